/**
 * Pure-engine throughput: three Raft engines in one process, messages handed
 * over in memory, no storage, no network, no validation. The leader proposes
 * 100-byte entries in batches; the figure is committed entries per CPU-second
 * (user + system time of this process, from process.cpuUsage).
 *
 *   npm run bench -- raft-throughput [--entries N] [--batch N] [--trials N]
 */
import type { RaftEngine } from '../src/agent/consensus/raft';
import { freshEngines, settle as settleEngines } from '../test/agent/consensus/raft/harness';
import { parseArgs, printTable, quantile, round, writeResult } from './lib/report';

const options = parseArgs({ entries: 1_000_000, batch: 1_000, trials: 5, entryBytes: 100 });
const settleRoundsMax = 1_000;
const aimEntriesPerCpuSecond = 200_000;

interface Trial {
  committed: number;
  cpuMs: number;
  wallMs: number;
  appliedInOrder: boolean;
}

/** The same in-memory engines as the throughput test (no storage, network or validation). */
const createEngines = (ids: readonly string[]): Map<string, RaftEngine> => freshEngines(ids);

function runTrial(): Trial {
  const ids = ['1', '2', '3'];
  const engines = createEngines(ids);
  // Each node's applied entries are checked as they come: consecutive indexes
  // and, for normal entries, the payload the leader proposed.
  const nextApplied = new Map(ids.map((id) => [id, 1]));
  let appliedInOrder = true;
  const settle = (): void =>
    settleEngines(
      engines,
      (id, entry) => {
        if (entry.index !== nextApplied.get(id)) appliedInOrder = false;
        nextApplied.set(id, entry.index + 1);
      },
      settleRoundsMax,
    );
  const leader = engines.get('1') as RaftEngine;
  leader.campaign();
  settle();
  const firstIndex = leader.status(0).commitIndex;
  const data = new Uint8Array(options.entryBytes).fill(7);
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  for (let proposed = 0; proposed < options.entries; proposed += options.batch) {
    for (let entry = 0; entry < options.batch; entry += 1) {
      const answer = leader.propose(data, 0);
      if (!answer.ok) throw new Error(`proposal refused: ${answer.error.message}`);
    }
    settle();
  }
  const wallMs = performance.now() - wallStart;
  const cpu = process.cpuUsage(cpuStart);
  const committed = leader.status(0).commitIndex - firstIndex;
  for (const id of ids) if (nextApplied.get(id) !== options.entries + firstIndex + 1) appliedInOrder = false;
  return { committed, cpuMs: (cpu.user + cpu.system) / 1000, wallMs, appliedInOrder };
}

runTrial(); // Warms up the JIT; not counted.
const trials: Trial[] = [];
for (let trial = 0; trial < options.trials; trial += 1) trials.push(runTrial());

const rates = trials.map((trial) => (trial.committed / trial.cpuMs) * 1000);
const rows = trials.map((trial, i) => [
  i + 1,
  trial.committed,
  round(trial.cpuMs),
  round(trial.wallMs),
  Math.round(rates[i] as number),
  Math.round((trial.committed / trial.wallMs) * 1000),
  trial.appliedInOrder ? 'yes' : 'NO',
]);
console.log(`raft-throughput: 3 in-memory nodes, ${options.entries} entries of ${options.entryBytes} B, batches of ${options.batch}\n`);
printTable(['trial', 'committed', 'cpu ms', 'wall ms', 'entries/cpu-s', 'entries/wall-s', 'applied in order'], rows);
const median = quantile(rates, 0.5);
console.log(`\nmedian ${Math.round(median)} entries per CPU-second (aim ≥ ${aimEntriesPerCpuSecond}): ${median >= aimEntriesPerCpuSecond ? 'met' : 'MISSED'}`);
writeResult('raft-throughput', {
  options,
  trials,
  entriesPerCpuSecondMedian: Math.round(median),
  entriesPerCpuSecondMin: Math.round(Math.min(...rates)),
  entriesPerCpuSecondMax: Math.round(Math.max(...rates)),
  aimEntriesPerCpuSecond,
  aimMet: median >= aimEntriesPerCpuSecond,
  allCommittedInOrder: trials.every((trial) => trial.appliedInOrder && trial.committed === options.entries),
});
