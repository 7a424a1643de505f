/**
 * What a simulated node keeps across a crash: exactly what its engine asked
 * to persist through `Ready` (hard state, entries, snapshot) and the snapshots
 * the host took for compaction. Everything else dies with the process.
 */
import type { Entry, HardState, RestoredState, Snapshot } from '../agent/consensus/engine';
import { err, ok, type Result } from '../shared/protocol';

export class SimStorage {
  private hardStateValue: HardState | null = null;
  private snapshotValue: Snapshot | null = null;
  /** Contiguous; the first holds index `snapshotIndex + 1`. */
  private entries: Entry[] = [];

  get hardState(): HardState | null {
    return this.hardStateValue;
  }

  get snapshot(): Snapshot | null {
    return this.snapshotValue;
  }

  get snapshotIndex(): number {
    return this.snapshotValue?.meta.index ?? 0;
  }

  get snapshotEpoch(): number {
    return this.snapshotValue?.meta.epoch ?? 0;
  }

  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /** The stored entry at `index`, or null when compacted or absent. */
  entryAt(index: number): Entry | null {
    return this.entries[index - this.snapshotIndex - 1] ?? null;
  }

  /** The epoch of the entry at `index`, from the snapshot for its last index, or null if unknown. */
  epochAt(index: number): number | null {
    if (index === 0) return 0;
    if (index === this.snapshotIndex) return this.snapshotEpoch;
    return this.entryAt(index)?.epoch ?? null;
  }

  setHardState(hardState: HardState): void {
    this.hardStateValue = { ...hardState };
  }

  /**
   * Appends per the `Ready.entries` contract: a batch that starts at or below
   * the last stored index replaces the stored suffix from there on. Entries
   * already covered by the snapshot are ignored. A gap or a batch out of order
   * breaks the contract and is answered as an error.
   */
  append(batch: readonly Entry[]): Result<null> {
    const contiguous = batch.every((entry, position) => position === 0 || entry.index === (batch[position - 1] as Entry).index + 1);
    if (!contiguous) return err('entries_not_contiguous', `Ready.entries are not contiguous: ${batch.map((entry) => entry.index).join(',')}`);
    const kept = batch.filter((entry) => entry.index > this.snapshotIndex);
    const first = kept[0];
    if (first === undefined) return ok(null);
    if (first.index > this.lastIndex + 1) {
      return err('entries_gap', `Ready.entries start at ${first.index} but storage ends at ${this.lastIndex}`);
    }
    this.entries.length = first.index - this.snapshotIndex - 1;
    this.entries.push(...kept);
    return ok(null);
  }

  /**
   * Installs a snapshot (received from a leader, or taken by the host). As in
   * Raft §7, stored entries after it survive only if the log agrees with the
   * snapshot at its last index.
   */
  installSnapshot(snapshot: Snapshot): Result<null> {
    const { index, epoch } = snapshot.meta;
    if (index < this.snapshotIndex) {
      return err('snapshot_regressed', `snapshot at ${index} would replace the stored one at ${this.snapshotIndex}`);
    }
    const keepSuffix = this.entryAt(index)?.epoch === epoch;
    this.entries = keepSuffix ? this.entries.slice(index - this.snapshotIndex) : [];
    this.snapshotValue = snapshot;
    return ok(null);
  }

  /** What a restarted engine is handed. */
  restoredState(): RestoredState {
    return { hardState: this.hardStateValue, snapshot: this.snapshotValue, entries: [...this.entries] };
  }

  /** Whether a stored config entry lies after `index`. */
  hasConfigEntryAfter(index: number): boolean {
    return this.entries.some((entry) => entry.index > index && entry.kind === 'config');
  }
}
