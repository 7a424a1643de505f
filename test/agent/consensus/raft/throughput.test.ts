/**
 * Batched proposals on a three-node cluster in memory: every entry commits on
 * every node, in index order, with the bytes the leader proposed. (How fast
 * this goes is measured by `npm run bench -- raft-throughput`, not here:
 * tests assert behaviour, not timings.)
 */
import { expect, it } from 'vitest';
import type { RaftEngine } from '../../../../src/agent/consensus/raft';
import { freshEngines, settle as settleEngines } from './harness';

const entriesTotal = 20_000;
const batchEntries = 1_000;
const entryBytes = 100;

it('a three-node cluster commits every batched proposal on every node, in order, with its payload', () => {
  const ids = ['1', '2', '3'];
  const engines = freshEngines(ids);
  const applied = new Map<string, { index: number; data: Uint8Array; kind: string }[]>(ids.map((id) => [id, []]));
  const settle = (): void => settleEngines(engines, (id, entry) => applied.get(id)?.push(entry));
  const leader = engines.get('1') as RaftEngine;
  leader.campaign();
  settle();
  const firstIndex = leader.status(0).commitIndex + 1;
  for (let proposed = 0; proposed < entriesTotal; proposed += batchEntries) {
    for (let entry = 0; entry < batchEntries; entry += 1) {
      const data = new Uint8Array(entryBytes);
      new DataView(data.buffer).setUint32(0, proposed + entry);
      expect(leader.propose(data, 0).ok).toBe(true);
    }
    settle();
  }
  expect(leader.status(0).commitIndex).toBe(firstIndex + entriesTotal - 1);
  for (const id of ids) {
    const entries = applied.get(id) ?? [];
    expect(entries.map((entry) => entry.index)).toEqual(Array.from({ length: entries.length }, (_, i) => i + 1));
    const normal = entries.filter((entry) => entry.index >= firstIndex);
    expect(normal).toHaveLength(entriesTotal);
    expect(normal.every((entry, i) => entry.kind === 'normal' && new DataView(entry.data.buffer, entry.data.byteOffset).getUint32(0) === i)).toBe(true);
  }
});
