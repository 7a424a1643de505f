import { expect, it } from 'vitest';
import { raftFactory } from '../../src/agent/consensus/raft/index';
import { runSimSweep } from '../../src/sim';

// One family per file so that the two test workers share the sweeps.
it('500 seeds of the "membership" family pass every safety invariant and linearizability with the real Raft', () => {
  const sweep = runSimSweep({ factory: raftFactory, engineName: 'raft', families: ['membership'], seeds: 500 });
  const failures = sweep.failures.map((failure) => `${failure.replay}: ${failure.violation?.kind} ${failure.violation?.message}`);
  expect(failures).toEqual([]);
  expect(sweep.runs).toBe(500);
}, 300_000);
