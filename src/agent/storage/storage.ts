import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { HardState, Ready, RestoredState, Snapshot } from '../consensus/engine';
import { err, ok, type Result } from '../../shared/protocol/result';
import { Disk, fsyncSamplesMaxDefault, type FsyncStats } from './disk';
import { hardStateFileName, readHardState, writeHardState } from './hard-state';
import { ioFailure, storageFailure, type StorageResult } from './result';
import { checkSnapshotBytes, loadNewestSnapshot, parseSnapshotName, saveSnapshotFile, snapshotBytesMaxDefault } from './snapshot-store';
import { WriteAheadLog, describeError, type SealedSegmentInfo, type WalLimits, type WalObserver, type WalRecoveryReport, type WalStats } from './wal';
import type { Entry } from '../consensus/engine';

/**
 * The agent's durable state behind one small interface: the WAL, the hard
 * state file and snapshots, in one directory:
 *
 *   <dir>/wal/<segment>-<firstIndex>.wal
 *   <dir>/snapshots/<index>-<epoch>.snap
 *   <dir>/hardstate
 *
 * `persist` makes one `Ready` durable in the order that keeps every crash
 * state consistent (see `persist`), and resolves only once it is.
 */

export interface StorageOptions {
  readonly walLimits?: Partial<WalLimits>;
  /** See `WalOptions.checkEpochOrder`. */
  readonly checkEpochOrder?: boolean;
  readonly snapshotBytesMax?: number;
  readonly fsyncSamplesMax?: number;
  /** See `WalOptions.observer`: the integrity engine's hook for manifests and parity. */
  readonly walObserver?: WalObserver;
}

export type PersistRequest = Pick<Ready, 'hardState' | 'entries' | 'snapshot'>;

export interface StorageRecoveryReport {
  readonly wal: WalRecoveryReport;
  /** Older snapshot files left by a crash between writing a newer one and deleting them. */
  readonly staleSnapshotsRemoved: readonly string[];
  readonly temporaryFilesRemoved: readonly string[];
  /**
   * Set when the WAL did not continue the snapshot (a crash between installing
   * a snapshot from the leader and resetting the log): the log was reset to
   * start after the snapshot, as Raft §7 prescribes.
   */
  readonly walResetToIndex: number | null;
}

export interface StorageOpened {
  readonly storage: Storage;
  readonly restored: RestoredState;
  readonly report: StorageRecoveryReport;
}

export interface StorageStats extends FsyncStats {
  readonly wal: Omit<WalStats, keyof FsyncStats>;
  readonly snapshotIndex: number | null;
  readonly persistCalls: number;
}

export class Storage {
  private chain: Promise<unknown> = Promise.resolve();
  private failure: { code: string; message: string } | null = null;
  private persistCalls = 0;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly wal: WriteAheadLog,
    private readonly disk: Disk,
    private snapshotIndex: number | null,
  ) {}

  /**
   * Opens the storage in `dir` (created if missing), verifies everything and
   * returns what the engine needs to restart. Damage other than a torn WAL tail
   * is returned as an error with the classified issue; nothing is repaired.
   */
  static async open(dir: string, options: StorageOptions = {}): Promise<StorageResult<StorageOpened>> {
    const disk = new Disk(options.fsyncSamplesMax ?? fsyncSamplesMaxDefault);
    try {
      await mkdir(dir, { recursive: true });
      const hardState = await readHardState(join(dir, hardStateFileName));
      if (!hardState.ok) return storageFailure(hardState.issue);
      const snapshots = await loadNewestSnapshot(join(dir, 'snapshots'), options.snapshotBytesMax ?? snapshotBytesMaxDefault);
      if (!snapshots.ok) return storageFailure(snapshots.issue);
      const opened = await WriteAheadLog.open(join(dir, 'wal'), { limits: options.walLimits ?? {}, checkEpochOrder: options.checkEpochOrder ?? true, disk, ...(options.walObserver === undefined ? {} : { observer: options.walObserver }) });
      if (!opened.ok) return opened;
      const { wal } = opened.data;

      for (const stale of snapshots.staleFiles) await rm(stale, { force: true });
      const snapshot = snapshots.snapshot;
      let entries = opened.data.entries;
      let walResetToIndex: number | null = null;
      if (snapshot !== null) {
        const reconciled = await reconcileWithSnapshot(wal, snapshot, join(dir, 'wal'));
        if (!reconciled.ok) {
          await wal.close();
          return reconciled;
        }
        walResetToIndex = reconciled.data;
        entries = walResetToIndex === null ? entries.filter((entry) => entry.index > snapshot.meta.index) : [];
      }
      const storage = new Storage(dir, wal, disk, snapshot?.meta.index ?? null);
      return ok({
        storage,
        restored: { hardState: hardState.data, snapshot, entries },
        report: {
          wal: opened.data.report,
          staleSnapshotsRemoved: snapshots.staleFiles,
          temporaryFilesRemoved: [...snapshots.temporaryFilesRemoved, ...(hardState.temporaryFileRemoved ? [`${hardStateFileName}.tmp`] : [])],
          walResetToIndex,
        },
      });
    } catch (error) {
      return ioFailure(`cannot open storage in ${dir}: ${describeError(error)}`);
    }
  }

  /**
   * Makes a Ready's durable parts durable, in this order:
   *  1. the snapshot (then the WAL is compacted or reset to follow it), so the
   *     log never continues from a snapshot that is not on disk;
   *  2. the entries (suffix replaced if they overlap), so that
   *  3. the hard state, written last, never names a commit index or a vote
   *     for a log the disk does not hold.
   * Calls are serialised; each resolves once its own writes are durable.
   */
  persist(ready: PersistRequest): Promise<Result<null>> {
    this.persistCalls += 1;
    return this.serialised(async () => {
      if (ready.snapshot !== null) {
        const installed = await this.installSnapshot(ready.snapshot);
        if (!installed.ok) return installed;
      }
      if (ready.entries.length > 0) {
        const appended = await this.wal.append(ready.entries);
        if (!appended.ok) return appended;
      }
      if (ready.hardState !== null) await this.writeHardState(ready.hardState);
      return ok(null);
    });
  }

  /**
   * Saves a snapshot the host took of its own state machine at an applied
   * index, then deletes the WAL segments it covers entirely.
   */
  saveSnapshot(snapshot: Snapshot): Promise<Result<null>> {
    return this.serialised(async () => {
      if (this.snapshotIndex !== null && snapshot.meta.index <= this.snapshotIndex) return ok(null);
      await saveSnapshotFile(this.disk, join(this.dir, 'snapshots'), snapshot);
      this.snapshotIndex = snapshot.meta.index;
      // Only a snapshot that matches the stored log may release its prefix.
      if (this.wal.epochAt(snapshot.meta.index) !== snapshot.meta.epoch) return ok(null);
      return this.wal.compactPrefix(snapshot.meta.index);
    });
  }

  /**
   * Rewrites the snapshot file even at the index already stored: the integrity
   * engine's repair of a damaged snapshot from the live state machine.
   */
  rewriteSnapshot(snapshot: Snapshot): Promise<Result<null>> {
    return this.serialised(async () => {
      if (this.snapshotIndex !== null && snapshot.meta.index < this.snapshotIndex) {
        return err('storage_stale_snapshot', `snapshot at index ${snapshot.meta.index} is older than the stored one at ${this.snapshotIndex}`);
      }
      await saveSnapshotFile(this.disk, join(this.dir, 'snapshots'), snapshot);
      this.snapshotIndex = snapshot.meta.index;
      return ok(null);
    });
  }

  /** Verified entries read back from disk, for a peer repairing from us. */
  readEntries(fromIndex: number, toIndex: number, bytesMax: number): Promise<StorageResult<Entry[]>> {
    return this.wal.readEntries(fromIndex, toIndex, bytesMax);
  }

  /** The newest snapshot file's bytes after verifying them, for a peer repairing from us; null when there is none. */
  async readNewestSnapshotBytes(): Promise<Result<{ index: number; bytes: Buffer } | null>> {
    const dir = join(this.dir, 'snapshots');
    const newest = (await readdir(dir))
      .map((name) => ({ name, identity: parseSnapshotName(name) }))
      .filter((file): file is { name: string; identity: { index: number; epoch: number } } => file.identity !== null)
      .sort((a, b) => b.identity.index - a.identity.index || b.identity.epoch - a.identity.epoch)[0];
    if (newest === undefined) return ok(null);
    const path = join(dir, newest.name);
    const bytes = await readFile(path);
    const checked = checkSnapshotBytes(path, newest.identity, bytes);
    if (!checked.ok) return err('storage_damaged', `our own snapshot fails verification: ${checked.issue.reason}`);
    return ok({ index: newest.identity.index, bytes });
  }

  sealedSegments(): SealedSegmentInfo[] {
    return this.wal.sealedSegments();
  }

  /** The slow-disk drill: every fsync (WAL, hard state, snapshot) waits this long first. */
  setFsyncDelayMs(delayMs: number): void {
    this.disk.setFsyncDelayMs(delayMs);
  }

  /** Last stored WAL entry; the host compares it with the engine's view in assertions. */
  lastIndex(): number | null {
    return this.wal.lastIndex();
  }

  stats(): StorageStats {
    const { fsyncCount, fsyncDurationsMs, fsyncDurationMsP99, ...wal } = this.wal.stats();
    return { fsyncCount, fsyncDurationsMs, fsyncDurationMsP99, wal, snapshotIndex: this.snapshotIndex, persistCalls: this.persistCalls };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.wal.close();
  }

  private async installSnapshot(snapshot: Snapshot): Promise<Result<null>> {
    if (this.snapshotIndex !== null && snapshot.meta.index < this.snapshotIndex) {
      return err('storage_stale_snapshot', `snapshot at index ${snapshot.meta.index} is older than the stored one at ${this.snapshotIndex}`);
    }
    await saveSnapshotFile(this.disk, join(this.dir, 'snapshots'), snapshot);
    this.snapshotIndex = snapshot.meta.index;
    // Raft §7: keep the entries after the snapshot only if the log agrees with it at its last index.
    if (this.wal.epochAt(snapshot.meta.index) === snapshot.meta.epoch) return this.wal.compactPrefix(snapshot.meta.index);
    return this.wal.reset(snapshot.meta.index + 1);
  }

  private async writeHardState(state: HardState): Promise<void> {
    await writeHardState(this.disk, this.dir, join(this.dir, hardStateFileName), state);
  }

  /** Runs `step` after every earlier call; an I/O failure poisons storage, as a failed fsync leaves nothing to trust. */
  private serialised(step: () => Promise<Result<null>>): Promise<Result<null>> {
    const run = async (): Promise<Result<null>> => {
      if (this.closed) return err('storage_closed', 'storage is closed');
      if (this.failure !== null) return err(this.failure.code, this.failure.message);
      try {
        const result = await step();
        if (!result.ok && result.error.code === 'storage_io') this.failure = result.error;
        return result;
      } catch (error) {
        if (error instanceof RangeError || (error instanceof Error && !('code' in error))) throw error;
        this.failure = { code: 'storage_io', message: `storage write failed, refusing further writes: ${describeError(error)}` };
        return err(this.failure.code, this.failure.message);
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/**
 * Decides what the WAL means next to the snapshot. Returns the index the WAL
 * was reset to, or null when it already continues the snapshot.
 */
async function reconcileWithSnapshot(wal: WriteAheadLog, snapshot: Snapshot, walDir: string): Promise<StorageResult<number | null>> {
  const { index, epoch } = snapshot.meta;
  const first = wal.firstIndex();
  if (wal.epochAt(index) === epoch) return ok(null);
  if (first !== null) {
    if (first === index + 1) return ok(null);
    if (first > index + 1) {
      return storageFailure({ kind: 'corruption', file: walDir, offset: 0, index: index + 1, reason: `entries ${index + 1}..${first - 1} are in neither the snapshot (up to ${index}) nor the WAL (from ${first})` });
    }
  } else if (first === null && wal.nextIndex() === index + 1) {
    return ok(null);
  }
  const reset = await wal.reset(index + 1);
  if (!reset.ok) return ioFailure(reset.error.message);
  return ok(index + 1);
}
