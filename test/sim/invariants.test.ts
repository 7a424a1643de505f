import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/agent/consensus/engine';
import { fingerprintOf, SafetyMonitor, type LogView } from '../../src/sim/invariants';

/** A crafted stored log: entries given as [epoch, data] from index snapshotIndex + 1. */
class CraftedLog implements LogView {
  entries: Entry[] = [];
  constructor(
    public snapshotIndex = 0,
    public snapshotEpoch = 0,
  ) {}
  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }
  get lastEpoch(): number {
    return this.entries.at(-1)?.epoch ?? this.snapshotEpoch;
  }
  fingerprintAt(index: number) {
    const entry = this.entries[index - this.snapshotIndex - 1];
    return entry === undefined ? null : fingerprintOf(entry);
  }
  /** Stores entries as a `Ready` would, returning them for `recordPersisted`. */
  write(...specs: [number, string][]): Entry[] {
    const written = specs.map(([epoch, data], offset) => entry(this.lastIndex + 1 + offset, epoch, data));
    this.entries.push(...written);
    return written;
  }
}

function entry(index: number, epoch: number, data: string): Entry {
  return { index, epoch, kind: 'normal', data: new TextEncoder().encode(data) };
}

function cluster(names: string[], voters: string[] | null = null) {
  const logs = new Map(names.map((name) => [name, new CraftedLog()]));
  const logOf = (name: string): CraftedLog => logs.get(name)!;
  const monitor = new SafetyMonitor(logOf, { upToDateRuleVoters: voters });
  return { monitor, logOf };
}

describe('election safety', () => {
  it('catches two leaders in one epoch', () => {
    const { monitor } = cluster(['a', 'b']);
    expect(monitor.recordStatus('a', { role: 'leader', epoch: 3, commitIndex: 0 })).toBeNull();
    expect(monitor.recordStatus('b', { role: 'leader', epoch: 3, commitIndex: 0 })?.invariant).toBe('election-safety');
  });

  it('allows one leader per epoch, one after the other', () => {
    const { monitor } = cluster(['a', 'b']);
    expect(monitor.recordStatus('a', { role: 'leader', epoch: 3, commitIndex: 0 })).toBeNull();
    expect(monitor.recordStatus('b', { role: 'leader', epoch: 4, commitIndex: 0 })).toBeNull();
  });
});

describe('log matching', () => {
  it('catches two different entries stored at one index with one epoch', () => {
    const { monitor, logOf } = cluster(['a', 'b']);
    expect(monitor.recordPersisted('a', logOf('a').write([1, 'x']))).toBeNull();
    expect(monitor.recordPersisted('b', logOf('b').write([1, 'y']))?.invariant).toBe('log-matching');
  });

  it('catches logs that agree at an index and epoch but differ before it', () => {
    const { monitor, logOf } = cluster(['a', 'b']);
    monitor.recordPersisted('a', logOf('a').write([1, 'p'], [3, 'q']));
    const violation = monitor.recordPersisted('b', logOf('b').write([2, 'p2'], [3, 'q']));
    expect(violation?.invariant).toBe('log-matching');
    expect(violation?.message).toMatch(/differ before it/);
  });
});

describe('state machine safety', () => {
  it('catches two nodes applying different entries at one index', () => {
    const { monitor } = cluster(['a', 'b']);
    expect(monitor.recordApplied('a', entry(1, 1, 'x'), 1)).toBeNull();
    expect(monitor.recordApplied('b', entry(1, 2, 'y'), 2)?.invariant).toBe('state-machine-safety');
  });

  it('catches a node applying an index twice', () => {
    const { monitor } = cluster(['a']);
    monitor.recordApplied('a', entry(1, 1, 'x'), 1);
    expect(monitor.recordApplied('a', entry(1, 1, 'x'), 1)?.invariant).toBe('state-machine-safety');
  });

  it('catches a commit index covering an entry that differs from the one committed elsewhere', () => {
    const { monitor, logOf } = cluster(['a', 'b']);
    logOf('a').write([1, 'x']);
    logOf('b').write([2, 'y']);
    expect(monitor.recordStatus('a', { role: 'follower', epoch: 1, commitIndex: 1 })).toBeNull();
    expect(monitor.recordStatus('b', { role: 'follower', epoch: 2, commitIndex: 1 })?.invariant).toBe('state-machine-safety');
  });
});

describe('leader completeness', () => {
  it('catches a leader of a later epoch that lacks a committed entry', () => {
    const { monitor, logOf } = cluster(['a', 'b']);
    logOf('a').write([1, 'x']);
    monitor.recordStatus('a', { role: 'leader', epoch: 1, commitIndex: 1 });
    logOf('b').write([2, 'other']);
    const violation = monitor.recordStatus('b', { role: 'leader', epoch: 2, commitIndex: 0 });
    expect(violation?.invariant).toBe('leader-completeness');
  });

  it('does not hold a leader to an entry committed only in its own or a later epoch', () => {
    const { monitor, logOf } = cluster(['a', 'b']);
    logOf('b').write([1, 'old']);
    monitor.recordStatus('b', { role: 'leader', epoch: 2, commitIndex: 0 });
    logOf('a').write([3, 'x']);
    // Committed in epoch 3, after b was elected in epoch 2: b, a stale leader, need not have it.
    expect(monitor.recordStatus('a', { role: 'leader', epoch: 3, commitIndex: 1 })).toBeNull();
  });

  it('catches a committed entry that a voter lacking it could still be elected over (Raft Figure 8)', () => {
    const { monitor, logOf } = cluster(['s1', 's2', 's3'], ['s1', 's2', 's3']);
    logOf('s1').write([2, 'from-term-2']);
    logOf('s2').write([3, 'from-term-3']);
    logOf('s3').write([2, 'from-term-2']);
    // s1, leading term 4, counts s3's copy of its term-2 entry and commits it: s2 (last term 3) would still win s3's vote.
    const violation = monitor.recordStatus('s1', { role: 'leader', epoch: 4, commitIndex: 1 });
    expect(violation?.invariant).toBe('leader-completeness');
    expect(violation?.message).toMatch(/s2, which lacks it, could be elected/);
  });

  it('accepts the same commit once the leader has a current-term entry on a quorum', () => {
    const { monitor, logOf } = cluster(['s1', 's2', 's3'], ['s1', 's2', 's3']);
    logOf('s1').write([2, 'from-term-2'], [4, 'noop']);
    logOf('s2').write([3, 'from-term-3']);
    logOf('s3').write([2, 'from-term-2'], [4, 'noop']);
    expect(monitor.recordStatus('s1', { role: 'leader', epoch: 4, commitIndex: 2 })).toBeNull();
  });
});

describe('commit monotonicity', () => {
  it('catches a commit index that goes back while the node runs', () => {
    const { monitor, logOf } = cluster(['a']);
    logOf('a').write([1, 'x'], [1, 'y']);
    monitor.recordStatus('a', { role: 'follower', epoch: 1, commitIndex: 2 });
    expect(monitor.recordStatus('a', { role: 'follower', epoch: 1, commitIndex: 1 })?.invariant).toBe('commit-monotonic');
  });

  it('lets a restarted node start from a lower commit index, but not below its snapshot', () => {
    const { monitor, logOf } = cluster(['a']);
    logOf('a').write([1, 'x'], [1, 'y']);
    monitor.recordStatus('a', { role: 'follower', epoch: 1, commitIndex: 2 });
    monitor.recordCrash('a');
    expect(monitor.recordStatus('a', { role: 'follower', epoch: 1, commitIndex: 1 })).toBeNull();
    const { monitor: other, logOf: otherLogOf } = cluster(['b']);
    otherLogOf('b').snapshotIndex = 5;
    otherLogOf('b').snapshotEpoch = 1;
    expect(other.recordStatus('b', { role: 'follower', epoch: 1, commitIndex: 3 })?.invariant).toBe('commit-monotonic');
  });
});
