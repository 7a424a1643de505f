/**
 * Raft's log in memory: an array of entries after the last snapshot, indexed
 * with an offset, plus the snapshot's index and term. Entries are immutable
 * objects shared with messages and Ready, never copied one by one.
 *
 * Terms never decrease along a Raft log, so every "find the entry of term T"
 * question is a binary search.
 */
import type { Entry } from '../engine';

/** Bytes a message spends on an entry besides its data (index, term, kind); an estimate for batching. */
export const entryOverheadBytes = 24;

export class RaftLog {
  /** `entries[k]` has index `snapshotIndex + 1 + k`. */
  private entries: Entry[] = [];
  snapshotIndex = 0;
  snapshotTerm = 0;
  committedIndex = 0;
  /** Applied by the host (acknowledged through `advance`). */
  appliedIndex = 0;
  /** Handed to the host in a Ready, not yet acknowledged. */
  applyingIndex = 0;
  /** The first index not yet durable on this node. */
  unstableFromIndex = 1;

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.snapshotTerm : last.epoch;
  }

  /** The term of entry `index`, or undefined if compacted away or not yet there. */
  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1]?.epoch;
  }

  entryAt(index: number): Entry | undefined {
    if (index <= this.snapshotIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.termAt(index) === term;
  }

  append(entry: Entry): void {
    if (entry.index !== this.lastIndex() + 1) {
      throw new Error(`raft log: appending index ${entry.index} after ${this.lastIndex()}`);
    }
    this.entries.push(entry);
  }

  /**
   * Appends the entries of an accepted append message after `previousIndex`,
   * skipping those already present and truncating at the first conflict
   * (§5.3). Returns the index of the first conflict, or 0 if none.
   */
  appendFromLeader(entries: readonly Entry[]): number {
    let position = 0;
    // Entries at or below the snapshot are committed, hence identical to ours (Log Matching).
    while (position < entries.length && (entries[position] as Entry).index <= this.snapshotIndex) position += 1;
    while (position < entries.length) {
      const entry = entries[position] as Entry;
      if (this.termAt(entry.index) !== entry.epoch) break;
      position += 1;
    }
    if (position === entries.length) return 0;
    const first = entries[position] as Entry;
    let conflictIndex = 0;
    if (first.index <= this.lastIndex()) {
      if (first.index <= this.committedIndex) {
        throw new Error(`raft log: conflict at committed index ${first.index} (committed ${this.committedIndex})`);
      }
      conflictIndex = first.index;
      this.entries.length = first.index - this.snapshotIndex - 1;
    }
    this.unstableFromIndex = Math.min(this.unstableFromIndex, first.index);
    for (; position < entries.length; position += 1) this.append(entries[position] as Entry);
    return conflictIndex;
  }

  /**
   * Entries in [fromIndex, toIndex], at most `bytesMax` bytes of data (but at
   * least one entry, so one large entry still makes progress).
   */
  slice(fromIndex: number, toIndex: number, bytesMax: number): Entry[] {
    if (fromIndex > toIndex) return [];
    const start = fromIndex - this.snapshotIndex - 1;
    const end = toIndex - this.snapshotIndex;
    if (start < 0 || end > this.entries.length) {
      throw new Error(`raft log: slice [${fromIndex}, ${toIndex}] outside (${this.snapshotIndex}, ${this.lastIndex()}]`);
    }
    let bytes = 0;
    let stop = start;
    while (stop < end) {
      const entry = this.entries[stop] as Entry;
      bytes += entry.data.byteLength + entryOverheadBytes;
      if (bytes > bytesMax && stop > start) break;
      stop += 1;
    }
    return this.entries.slice(start, stop);
  }

  /** Entries not yet durable, to persist through Ready. */
  unstableEntries(): Entry[] {
    if (this.unstableFromIndex > this.lastIndex()) return [];
    return this.entries.slice(this.unstableFromIndex - this.snapshotIndex - 1);
  }

  /** Marks entries durable up to `index` if the entry there is still the one that was persisted. */
  stableTo(index: number, term: number): void {
    if (this.termAt(index) === term && index >= this.unstableFromIndex) this.unstableFromIndex = index + 1;
  }

  commitTo(index: number): boolean {
    if (index <= this.committedIndex) return false;
    if (index > this.lastIndex()) {
      throw new Error(`raft log: commit ${index} beyond last index ${this.lastIndex()}`);
    }
    this.committedIndex = index;
    return true;
  }

  /** The first index holding `term`, searching (snapshotIndex, upToIndex]; terms never decrease along the log. */
  firstIndexOfTerm(term: number, upToIndex: number): number {
    let low = this.snapshotIndex + 1;
    let high = Math.min(upToIndex, this.lastIndex());
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.termAt(middle) as number) < term) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The last index whose term is at most `term`, searching [snapshotIndex, upToIndex]. */
  lastIndexWithTermAtMost(term: number, upToIndex: number): number {
    let low = this.snapshotIndex;
    let high = Math.min(upToIndex, this.lastIndex());
    if (this.snapshotTerm > term) return this.snapshotIndex;
    while (low < high) {
      const middle = (low + high + 1) >>> 1;
      if ((this.termAt(middle) as number) <= term) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /** Drops the prefix up to `index` (inclusive), which a snapshot now covers. */
  compact(index: number, term: number): void {
    if (index <= this.snapshotIndex) return;
    if (index > this.appliedIndex) throw new Error(`raft log: compacting ${index} beyond applied ${this.appliedIndex}`);
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(index: number, term: number): void {
    this.entries = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.committedIndex = index;
    this.appliedIndex = index;
    this.applyingIndex = index;
    this.unstableFromIndex = index + 1;
  }

  /** Loads entries read back from stable storage after a restart. */
  load(entries: readonly Entry[]): void {
    for (const entry of entries) this.append(entry);
    this.unstableFromIndex = this.lastIndex() + 1;
  }

  /** Scans back from `fromIndex` for the last entry of kind config; undefined if none in memory. */
  lastConfigEntry(fromIndex: number): Entry | undefined {
    for (let index = Math.min(fromIndex, this.lastIndex()); index > this.snapshotIndex; index -= 1) {
      const entry = this.entries[index - this.snapshotIndex - 1] as Entry;
      if (entry.kind === 'config') return entry;
    }
    return undefined;
  }

  /** Committed entries not yet handed to the host, at most `bytesMax` bytes (at least one entry). */
  nextCommittedEntries(bytesMax: number): Entry[] {
    if (this.applyingIndex >= this.committedIndex) return [];
    return this.slice(this.applyingIndex + 1, this.committedIndex, bytesMax);
  }

  hasNextCommittedEntries(): boolean {
    return this.applyingIndex < this.committedIndex;
  }
}
