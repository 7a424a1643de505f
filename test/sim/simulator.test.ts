import { describe, expect, it } from 'vitest';
import { createRaftFactory, RaftEngine, raftFactory } from '../../src/agent/consensus/raft/index';
import { EventQueue, runSimSweep, runSimulation, SimStorage, type SimRunOptions, type SimRunResult } from '../../src/sim';
import type { RaftMessage } from '../../src/agent/consensus/raft/index';

/** §5.4.1 broken: votes for any candidate, however stale its log. */
class GrantsEveryVote extends RaftEngine {
  protected override candidateLogIsUpToDate(): boolean {
    return true;
  }
}

/** §5.4.2 broken: commits an earlier term's entry by counting its replicas. */
class CommitsOldTermByCounting extends RaftEngine {
  protected override commitIndexByQuorum(): number {
    const matches = this.membership.voters
      .map((voter) => (voter === this.id ? this.log.lastIndex() : (this.progress.get(voter)?.matchIndex ?? 0)))
      .sort((left, right) => right - left);
    const quorumIndex = matches[Math.floor(matches.length / 2)] ?? 0;
    return Math.max(quorumIndex, this.log.committedIndex);
  }
}

/** Runs seeds from 1 until one fails or `seedsMax` ran. */
function firstFailure(options: Omit<SimRunOptions<RaftMessage>, 'seed'>, seedsMax: number): SimRunResult | null {
  const sweep = runSimSweep({ ...options, families: [options.family], seeds: seedsMax, stopOnFailure: true });
  return sweep.failures[0] ?? null;
}

describe('simulator determinism', () => {
  it('replays a seed to the identical trace, history and verdict', () => {
    const options = { factory: raftFactory, engineName: 'raft', family: 'crashes' as const, seed: 42, keepHistory: true };
    const first = runSimulation(options);
    const second = runSimulation(options);
    expect(second.traceHash).toBe(first.traceHash);
    expect(second.stats).toEqual(first.stats);
    expect(second.history).toEqual(first.history);
  });

  it('gives different seeds different traces', () => {
    const hashes = new Set([1, 2, 3].map((seed) => runSimulation({ factory: raftFactory, engineName: 'raft', family: 'partitions', seed }).traceHash));
    expect(hashes.size).toBe(3);
  });

  it('names the command that replays a run', () => {
    const result = runSimulation({ factory: raftFactory, engineName: 'raft', family: 'partitions', seed: 1234 });
    expect(result.replay).toBe('npx quorumscope sim --engine raft --family partitions --seed 1234');
  });
});

describe('simulator against the real Raft engine', () => {
  it('commits and answers client operations in a steady cluster', () => {
    const result = runSimulation({ factory: raftFactory, engineName: 'raft', family: 'steady', seed: 5 });
    expect(result.violation).toBeNull();
    expect(result.stats.committedEntries).toBeGreaterThan(20);
    expect(result.stats.operationsCompleted).toBeGreaterThan(result.stats.operations * 0.9);
    expect(result.stats.linearizability).toBe('linearizable');
  });

  it('serves reads both through the log and through ReadIndex', () => {
    for (const readMode of ['log', 'read-index'] as const) {
      const result = runSimulation({ factory: raftFactory, engineName: 'raft', family: 'partitions', seed: 11, readMode });
      expect(result.violation).toBeNull();
      expect(result.stats.readMode).toBe(readMode);
      expect(result.stats.operationsCompleted).toBeGreaterThan(10);
    }
  });

  it('crashes and restarts nodes, compacts logs and changes membership in their families', () => {
    const crashes = runSimulation({ factory: raftFactory, engineName: 'raft', family: 'crashes', seed: 3 });
    const membership = runSimSweep({ factory: raftFactory, engineName: 'raft', families: ['membership'], seeds: 5 });
    expect(crashes.ok).toBe(true);
    expect(crashes.stats.crashes).toBeGreaterThan(0);
    expect(crashes.stats.compactions).toBeGreaterThan(0);
    expect(membership.failureCount).toBe(0);
  });
});

describe('simulator against deliberately broken Raft variants', () => {
  it('catches a Raft that grants votes to candidates with stale logs (§5.4.1)', () => {
    const failure = firstFailure({ factory: createRaftFactory(GrantsEveryVote), engineName: 'raft', family: 'partitions' }, 100);
    expect(failure).not.toBeNull();
    expect(failure?.violation?.kind).toMatch(/leader-completeness|state-machine-safety|log-matching|linearizability/);
    expect(failure?.replay).toMatch(/--family partitions --seed \d+/);
  });

  it('catches a Raft that commits entries of earlier terms by counting replicas (§5.4.2, Figure 8)', () => {
    // Election storms (short timeouts, no PreVote) and one entry per append make Figure 8 states common.
    const failure = firstFailure(
      {
        factory: createRaftFactory(CommitsOldTermByCounting),
        engineName: 'raft',
        family: 'crashes',
        nodes: 3,
        tuning: { electionTimeoutTicks: 3, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false, appendBytesMax: 1 },
        network: { delayMsMax: 15 },
      },
      1_000,
    );
    expect(failure).not.toBeNull();
    expect(failure?.violation?.kind).toMatch(/leader-completeness|state-machine-safety/);
  });

  it('the same storm settings pass with the correct Raft', () => {
    const sweep = runSimSweep({
      factory: raftFactory,
      engineName: 'raft',
      families: ['crashes'],
      seeds: 150,
      nodes: 3,
      tuning: { electionTimeoutTicks: 3, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false, appendBytesMax: 1 },
      network: { delayMsMax: 15 },
    });
    expect(sweep.failures.map((failure) => failure.replay)).toEqual([]);
  });
});

describe('linearizability of a deliberately broken KV store', () => {
  it('says no when followers answer reads from their own state without ReadIndex', () => {
    const failure = firstFailure({ factory: raftFactory, engineName: 'raft', family: 'partitions', readMode: 'follower-local' }, 100);
    expect(failure?.violation?.kind).toBe('linearizability');
    expect(failure?.violation?.message).toMatch(/key "k\d"/);
  });
});

describe('simulator building blocks', () => {
  it('orders events by virtual time, then by insertion', () => {
    const queue = new EventQueue<string>();
    queue.push(5, 'late');
    queue.push(1, 'first');
    queue.push(1, 'second');
    queue.push(3, 'middle');
    expect([queue.pop(), queue.pop(), queue.pop(), queue.pop(), queue.pop()].map((slot) => slot?.event ?? null)).toEqual([
      'first',
      'second',
      'middle',
      'late',
      null,
    ]);
  });

  it('bounds the event queue', () => {
    const queue = new EventQueue<number>(2);
    queue.push(1, 1);
    queue.push(2, 2);
    expect(() => queue.push(3, 3)).toThrow(/more than 2 events/);
  });

  it('stores Ready entries by replacing the suffix and refuses a gap', () => {
    const storage = new SimStorage();
    const entry = (index: number, epoch: number) => ({ index, epoch, kind: 'normal' as const, data: new Uint8Array([index]) });
    expect(storage.append([entry(1, 1), entry(2, 1), entry(3, 1)]).ok).toBe(true);
    expect(storage.append([entry(2, 2)]).ok).toBe(true);
    expect(storage.lastIndex).toBe(2);
    expect(storage.epochAt(2)).toBe(2);
    expect(storage.append([entry(5, 2)]).ok).toBe(false);
  });

  it('keeps only persisted state across a crash: a snapshot and the entries after it', () => {
    const storage = new SimStorage();
    const entry = (index: number) => ({ index, epoch: 1, kind: 'normal' as const, data: new Uint8Array([index]) });
    storage.append([entry(1), entry(2), entry(3)]);
    storage.setHardState({ term: 1, vote: 'n1', commit: 2 });
    storage.installSnapshot({ meta: { index: 2, epoch: 1, membership: { voters: ['n1'], learners: [] } }, data: new Uint8Array() });
    const restored = storage.restoredState();
    expect(restored.snapshot?.meta.index).toBe(2);
    expect(restored.entries.map((stored) => stored.index)).toEqual([3]);
    expect(restored.hardState).toEqual({ term: 1, vote: 'n1', commit: 2 });
  });
});
