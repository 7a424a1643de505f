/**
 * What a leader knows about each follower's log, and how it paces appends to
 * it (the flow control of etcd-io/raft's tracker):
 *
 *   probe      one append per heartbeat round until the follower's log
 *              position is found, then replicate;
 *   replicate  optimistic: `nextIndex` moves ahead as appends go out, at most
 *              `inflightAppendsMax` unacknowledged appends at a time;
 *   snapshot   the follower needs entries the leader compacted away; wait for
 *              the snapshot to be acknowledged (or retried after a timeout).
 */
import type { NodeId } from '../../../shared/protocol';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A ring of the last indices of unacknowledged appends, bounded by `capacity`. */
export class Inflights {
  private readonly lastIndices: Float64Array;
  private start = 0;
  count = 0;

  constructor(readonly capacity: number) {
    this.lastIndices = new Float64Array(capacity);
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  add(lastIndex: number): void {
    if (this.full()) throw new Error('inflights: adding to a full window');
    this.lastIndices[(this.start + this.count) % this.capacity] = lastIndex;
    this.count += 1;
  }

  /** Frees every append whose last index is at or below `index`. */
  freeTo(index: number): void {
    while (this.count > 0 && (this.lastIndices[this.start] as number) <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count -= 1;
    }
  }

  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count -= 1;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = 'probe';
  /** In probe: an append went out and no answer came yet; pauses further appends. */
  probeSent = false;
  /** In snapshot: the index of the snapshot sent. */
  pendingSnapshotIndex = 0;
  /** Ticks spent in snapshot state; past the election timeout the snapshot is sent again. */
  snapshotTicks = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Ticks since the leader last heard from this node; null if never. */
  ticksSinceContact: number | null = null;
  readonly inflights: Inflights;

  constructor(
    readonly nodeId: NodeId,
    public voter: boolean,
    nextIndex: number,
    inflightAppendsMax: number,
  ) {
    this.nextIndex = nextIndex;
    this.inflights = new Inflights(inflightAppendsMax);
  }

  becomeProbe(): void {
    // After a snapshot, probing starts right after it: the follower has at least that.
    if (this.state === 'snapshot') {
      this.nextIndex = Math.max(this.matchIndex + 1, this.pendingSnapshotIndex + 1);
    } else {
      this.nextIndex = this.matchIndex + 1;
    }
    this.resetState('probe');
  }

  becomeReplicate(): void {
    this.nextIndex = this.matchIndex + 1;
    this.resetState('replicate');
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshotIndex = snapshotIndex;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  /** Records an acknowledgement up to `index`; returns whether it was news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.matchIndex < index) {
      this.matchIndex = index;
      updated = true;
      this.probeSent = false;
    }
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    return updated;
  }

  /**
   * Moves `nextIndex` back after a rejection. Returns false when the rejection
   * is stale (it answers an append sent before the latest change of plan).
   */
  maybeDecreaseTo(rejectedIndex: number, nextIndexHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejectedIndex <= this.matchIndex) return false;
      this.nextIndex = this.matchIndex + 1;
      return true;
    }
    if (this.nextIndex - 1 !== rejectedIndex) return false;
    this.nextIndex = Math.max(Math.min(rejectedIndex, nextIndexHint), this.matchIndex + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

/**
 * When each recent proposal was made (the host's `nowMs`), to report how old
 * the oldest entry a follower has not acknowledged is. At most
 * `proposalTimesMax` are kept; older ones are forgotten, so a follower that
 * trails by more than that reports the age of the oldest one still known.
 */
export const proposalTimesMax = 4096;

export class ProposalClock {
  private indices: number[] = [];
  private timesMs: number[] = [];
  private head = 0;

  record(index: number, nowMs: number): void {
    if (this.indices.length - this.head >= proposalTimesMax) this.head += 1;
    this.indices.push(index);
    this.timesMs.push(nowMs);
    this.maybeCompact();
  }

  /** Age in ms of the first recorded proposal after `matchIndex`, up to `lastIndex`; 0 if none. */
  oldestUnacknowledgedAgeMs(matchIndex: number, lastIndex: number, nowMs: number): number {
    let low = this.head;
    let high = this.indices.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.indices[middle] as number) <= matchIndex) low = middle + 1;
      else high = middle;
    }
    const index = this.indices[low];
    if (index === undefined || index > lastIndex) return 0;
    return Math.max(0, nowMs - (this.timesMs[low] as number));
  }

  /** Forgets proposals every follower has acknowledged. */
  forgetThrough(index: number): void {
    while (this.head < this.indices.length && (this.indices[this.head] as number) <= index) this.head += 1;
    this.maybeCompact();
  }

  clear(): void {
    this.indices = [];
    this.timesMs = [];
    this.head = 0;
  }

  private maybeCompact(): void {
    // Shift out the forgotten prefix once it dominates, so memory stays near proposalTimesMax.
    if (this.head >= proposalTimesMax && this.head * 2 >= this.indices.length) {
      this.indices = this.indices.slice(this.head);
      this.timesMs = this.timesMs.slice(this.head);
      this.head = 0;
    }
  }
}
