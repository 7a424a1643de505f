/**
 * Throughput of the engine alone: three nodes in memory, 100-byte entries
 * proposed in batches, no validation or tracing on the way. The goal is
 * ≥ 200k committed entries per CPU-second; the assertion is looser so a busy
 * CI machine does not flake, and the measured rate is printed.
 */
import { expect, it } from 'vitest';
import { RaftEngine, type RaftMessage } from '../../../../src/agent/consensus/raft';
import { createRandom } from '../../../../src/shared/random';

const entriesTotal = 200_000;
const batchEntries = 1_000;
const entryBytes = 100;

function runCluster(): { committed: number; elapsedMs: number } {
  const ids = ['1', '2', '3'];
  const engines = new Map(
    ids.map((id) => [
      id,
      new RaftEngine(
        {
          id,
          initialMembership: { voters: ids, learners: [] },
          random: createRandom(Number(id)),
          electionTimeoutTicks: 10,
          heartbeatIntervalTicks: 1,
          preVote: true,
          checkQuorum: true,
          inflightAppendsMax: 256,
          appendBytesMax: 1024 * 1024,
        },
        { hardState: null, snapshot: null, entries: [] },
      ),
    ]),
  );
  let queue: RaftMessage[] = [];
  const settle = (): void => {
    for (let round = 0; round < 1_000; round += 1) {
      let moved = false;
      for (const engine of engines.values()) {
        if (!engine.hasReady()) continue;
        const ready = engine.ready();
        for (const message of ready.messages) queue.push(message);
        engine.advance(ready);
        moved = true;
      }
      const delivering = queue;
      queue = [];
      for (const message of delivering) engines.get(message.to)?.step(message);
      if (!moved && delivering.length === 0) return;
    }
    throw new Error('did not settle');
  };
  const leader = engines.get('1') as RaftEngine;
  leader.campaign();
  settle();
  const data = new Uint8Array(entryBytes);
  const startMs = performance.now();
  for (let proposed = 0; proposed < entriesTotal; proposed += batchEntries) {
    for (let entry = 0; entry < batchEntries; entry += 1) leader.propose(data, 0);
    settle();
  }
  const elapsedMs = performance.now() - startMs;
  return { committed: leader.status(0).commitIndex - 1, elapsedMs };
}

it('a three-node cluster commits over 100k 100-byte entries per second in memory', () => {
  runCluster(); // warm up the JIT
  const { committed, elapsedMs } = runCluster();
  const perSecond = Math.round((committed / elapsedMs) * 1000);
  console.log(`raft throughput: ${committed} entries in ${elapsedMs.toFixed(0)} ms = ${perSecond} entries/s`);
  expect(committed).toBe(entriesTotal);
  expect(perSecond).toBeGreaterThan(100_000);
});
