import { mkdir, open, readdir, readFile, rm, stat, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Xxh64 } from '@node-rs/xxhash';
import type { Entry } from '../consensus/engine';
import { err, ok, type Result } from '../../shared/protocol/result';
import {
  RecordType,
  contentHash,
  decodeSegmentHeader,
  encodeEntryRecord,
  encodeSealRecord,
  encodeSegmentHeader,
  entryRecordBytes,
  isValidRecordAt,
  parseSegmentFileName,
  readRecord,
  recordBodyHeaderBytes,
  recordOverheadBytes,
  sealRecordBytes,
  segmentFileName,
  segmentHeaderBytes,
  type StorageIssue,
} from './codec';
import { Disk, writeFully, type FsyncStats } from './disk';
import { ioFailure, storageFailure, type StorageResult } from './result';

/**
 * A segmented write-ahead log with group commit (see README.md).
 *
 * Appends from concurrent callers are queued; one writer drains the queue,
 * writes every queued record with one `writev` and covers them with one
 * fdatasync. A caller's promise resolves only after the fsync that covers its
 * records. Suffix replacement, prefix compaction and reset go through the same
 * queue, so every operation lands in the order it was asked for.
 *
 * Crash safety rests on three orderings:
 * - a segment file appears atomically (header written to a temp file, fsynced,
 *   renamed, directory fsynced), so a header is never torn;
 * - a segment is sealed (seal record fsynced) before the next one is created,
 *   so only the last segment may lack a seal;
 * - segments are deleted one at a time with a directory fsync after each
 *   (newest first when cutting a suffix, oldest first when compacting), so a
 *   crash leaves a contiguous run of segments, never one with a hole.
 */

export interface WalLimits {
  /** A segment is sealed before a record would take it past this size. */
  readonly segmentBytesMax: number;
  /** Largest record body (identity header + entry data). */
  readonly recordBytesMax: number;
  /** Bytes written by one group commit before it fsyncs and starts the next batch. */
  readonly batchBytesMax: number;
  /** Operations waiting for the writer; beyond this, callers get `storage_overloaded`. */
  readonly pendingOperationsMax: number;
}

export const walLimitsDefault: WalLimits = {
  segmentBytesMax: 8 * 1024 * 1024,
  recordBytesMax: 16 * 1024 * 1024,
  batchBytesMax: 4 * 1024 * 1024,
  pendingOperationsMax: 10_000,
};

export interface WalOptions {
  readonly limits?: Partial<WalLimits>;
  /**
   * Whether epochs must never decrease along the log. Raft and Zab guarantee
   * it, and it is what lets recovery tell a stale record (an older version of
   * an overwritten entry) from a current one. An engine whose log may hold a
   * lower epoch after a higher one must turn it off and loses `stale` detection.
   */
  readonly checkEpochOrder?: boolean;
  /** Shared with the rest of storage so that all fsyncs are timed and delayed together. */
  readonly disk?: Disk;
  /** Told about seals and about sealed segments about to change, so that checksums and parity follow the log. */
  readonly observer?: WalObserver;
}

/** A sealed segment as the integrity engine sees it. */
export interface SealedSegmentInfo {
  readonly segment: number;
  readonly firstIndex: number;
  /** firstIndex - 1 when the segment holds no entry. */
  readonly lastIndex: number;
  readonly path: string;
  readonly bytes: number;
  /** The epoch of the entry just before this segment (0 when none is stored): the floor for stale detection. */
  readonly previousEpoch: number;
}

/**
 * Synchronous notifications from the WAL's writer. `sealed` comes after the
 * seal is durable; `changing` comes before a segment is truncated, unsealed or
 * deleted, so that nothing verifies it against a checksum it no longer has.
 */
export interface WalObserver {
  sealed(segment: SealedSegmentInfo): void;
  changing(segment: number): void;
}

export interface WalRecoveryReport {
  readonly segmentsScanned: number;
  readonly entriesRecovered: number;
  /** A partly written last record that was cut off; null when the log ended cleanly. */
  readonly tornTail: (StorageIssue & { readonly bytesTruncated: number }) | null;
  /** Leftover temp files of interrupted segment creations, deleted on open. */
  readonly temporaryFilesRemoved: readonly string[];
}

export interface WalOpened {
  readonly wal: WriteAheadLog;
  /** Every entry in the log, in index order. */
  readonly entries: readonly Entry[];
  readonly report: WalRecoveryReport;
}

export interface WalStats extends FsyncStats {
  readonly segmentCount: number;
  readonly segmentBytes: number;
  readonly firstIndex: number | null;
  readonly lastIndex: number | null;
  readonly appendCalls: number;
  readonly entriesAppended: number;
  readonly groupCommits: number;
  readonly pendingOperations: number;
}

interface Segment {
  readonly number: number;
  readonly firstIndex: number;
  readonly path: string;
  /** Byte offset of each entry record: entry `i` is at `offsets[i - firstIndex]`. */
  offsets: number[];
  epochs: number[];
  /** Bytes of valid content (the file's length). */
  bytes: number;
  sealed: boolean;
}

type Settle = (result: Result<null>) => void;

type Operation =
  | { readonly type: 'append'; readonly entries: readonly Entry[]; readonly bytes: number; readonly settle: Settle; readonly fail: (error: Error) => void }
  | { readonly type: 'truncate-suffix'; readonly fromIndex: number; readonly settle: Settle }
  | { readonly type: 'compact-prefix'; readonly uptoIndex: number; readonly settle: Settle }
  | { readonly type: 'reset'; readonly nextIndex: number; readonly settle: Settle };

type AppendOperation = Extract<Operation, { type: 'append' }>;

const temporarySuffix = '.tmp';

export class WriteAheadLog {
  private readonly segments: Segment[];
  private readonly limits: WalLimits;
  private readonly checkEpochOrder: boolean;
  private readonly disk: Disk;
  private active: { segment: Segment; handle: FileHandle; hasher: Xxh64 } | null = null;
  private nextSegmentNumber: number;
  /** The index the next append must start at when the log holds no segment; null when anything goes. */
  private emptyNextIndex: number | null = null;
  private readonly queue: Operation[] = [];
  private draining = false;
  private drainScheduled = false;
  private drained: Promise<void> = Promise.resolve();
  private failure: { code: string; message: string } | null = null;
  private closed = false;
  private appendCalls = 0;
  private entriesAppended = 0;
  private groupCommits = 0;

  private constructor(
    private readonly dir: string,
    segments: Segment[],
    limits: WalLimits,
    checkEpochOrder: boolean,
    disk: Disk,
    private readonly observer: WalObserver | null,
  ) {
    this.segments = segments;
    this.limits = limits;
    this.checkEpochOrder = checkEpochOrder;
    this.disk = disk;
    this.nextSegmentNumber = (segments.at(-1)?.number ?? 0) + 1;
  }

  /**
   * Opens (creating if needed) the log in `dir` and verifies every record. A
   * torn tail is cut off and reported; any other damage is returned as an
   * error naming file, offset and index, and nothing is changed on disk.
   */
  static async open(dir: string, options: WalOptions = {}): Promise<StorageResult<WalOpened>> {
    const limits = { ...walLimitsDefault, ...options.limits };
    assertLimits(limits);
    const checkEpochOrder = options.checkEpochOrder ?? true;
    const disk = options.disk ?? new Disk();
    try {
      await mkdir(dir, { recursive: true });
      const names = (await readdir(dir)).sort();
      const temporaryFilesRemoved: string[] = [];
      for (const name of names) {
        if (!name.endsWith(temporarySuffix)) continue;
        await rm(join(dir, name), { force: true });
        temporaryFilesRemoved.push(name);
      }
      const files = names
        .map((name) => ({ name, identity: parseSegmentFileName(name) }))
        .filter((file): file is { name: string; identity: { segment: number; firstIndex: number } } => file.identity !== null)
        .sort((a, b) => a.identity.segment - b.identity.segment);

      const scan = new RecoveryScan(limits, checkEpochOrder);
      const segments: Segment[] = [];
      let tornTail: WalRecoveryReport['tornTail'] = null;
      let lastBytes: Buffer | null = null;
      for (const [position, file] of files.entries()) {
        const path = join(dir, file.name);
        const isLast = position === files.length - 1;
        const size = (await stat(path)).size;
        const readBytesMax = segmentReadBytesMax(limits);
        if (size > readBytesMax) {
          return storageFailure({ kind: 'corruption', file: path, offset: 0, index: null, reason: `segment is ${size} bytes, more than the ${readBytesMax} a segment can hold` });
        }
        const bytes = await readFile(path);
        const outcome = scan.segment(path, file.identity, bytes, isLast);
        if (!outcome.ok) return storageFailure(outcome.issue);
        if (outcome.tornTail !== null) {
          // Only an unacknowledged write can be torn, so dropping it loses nothing that was promised.
          const handle = await open(path, 'r+');
          try {
            await handle.truncate(outcome.tornTail.offset);
            await disk.syncData(handle);
          } finally {
            await handle.close();
          }
          tornTail = { ...outcome.tornTail, bytesTruncated: bytes.length - outcome.tornTail.offset };
        }
        segments.push(outcome.segment);
        if (isLast) lastBytes = bytes.subarray(0, outcome.segment.bytes);
      }

      const wal = new WriteAheadLog(dir, segments, limits, checkEpochOrder, disk, options.observer ?? null);
      const last = segments.at(-1);
      if (last !== undefined && !last.sealed && lastBytes !== null) {
        const handle = await open(last.path, 'r+');
        wal.active = { segment: last, handle, hasher: new Xxh64().update(lastBytes) };
      }
      return ok({
        wal,
        entries: scan.entries,
        report: { segmentsScanned: files.length, entriesRecovered: scan.entries.length, tornTail, temporaryFilesRemoved },
      });
    } catch (error) {
      return ioFailure(`cannot open the WAL in ${dir}: ${describeError(error)}`);
    }
  }

  /** The first stored entry's index; null when the log holds no entry. */
  firstIndex(): number | null {
    const first = this.segments.find((segment) => segment.offsets.length > 0);
    return first === undefined ? null : first.firstIndex;
  }

  /** The last stored entry's index; null when the log holds no entry. */
  lastIndex(): number | null {
    if (this.firstIndex() === null) return null;
    const next = this.nextIndex();
    return next === null ? null : next - 1;
  }

  /** The index the next append must start at (a lower one replaces a suffix); null when the log is empty and unconstrained. */
  nextIndex(): number | null {
    const last = this.segments.at(-1);
    if (last === undefined) return this.emptyNextIndex;
    return last.firstIndex + last.offsets.length;
  }

  /** The epoch of the stored entry at `index`, or null when the log does not hold it. */
  epochAt(index: number): number | null {
    const segment = this.segmentHolding(index);
    if (segment === undefined) return null;
    return segment.epochs[index - segment.firstIndex] ?? null;
  }

  /** Every sealed segment, oldest first, for the scrubber and the parity writer. */
  sealedSegments(): SealedSegmentInfo[] {
    const sealed: SealedSegmentInfo[] = [];
    for (const [position, segment] of this.segments.entries()) {
      if (!segment.sealed) continue;
      sealed.push(this.sealedInfo(segment, this.segments[position - 1]));
    }
    return sealed;
  }

  /**
   * Reads stored entries `fromIndex..toIndex` back from disk, verifying each
   * record's CRC and identity, and stops before `bytesMax` of entry data. A
   * record that fails its check is an error, never an entry: a damaged copy
   * is not served to a peer that is repairing from us.
   */
  async readEntries(fromIndex: number, toIndex: number, bytesMax: number): Promise<StorageResult<Entry[]>> {
    const entries: Entry[] = [];
    let bytes = 0;
    for (let index = fromIndex; index <= toIndex; ) {
      const segment = this.segmentHolding(index);
      if (segment === undefined) return { ...err('not_found', `entry ${index} is not in the log`), issue: null };
      const last = Math.min(toIndex, segment.firstIndex + segment.offsets.length - 1);
      const start = segment.offsets[index - segment.firstIndex] ?? segment.bytes;
      const end = segment.offsets[last + 1 - segment.firstIndex] ?? (segment.sealed ? segment.bytes - sealRecordBytes : segment.bytes);
      let content: Buffer;
      try {
        const handle = await open(segment.path, 'r');
        try {
          content = Buffer.alloc(end - start);
          const { bytesRead } = await handle.read(content, 0, content.length, start);
          if (bytesRead !== content.length) return storageFailure({ kind: 'corruption', file: segment.path, offset: start + bytesRead, index, reason: 'segment is shorter than its records' });
        } finally {
          await handle.close();
        }
      } catch (error) {
        return ioFailure(`cannot read ${segment.path}: ${describeError(error)}`);
      }
      let offset = 0;
      for (; index <= last; index += 1) {
        const read = readRecord(content, offset, this.limits.recordBytesMax);
        if (read.status !== 'decoded' || read.record.type !== RecordType.entry || read.record.segment !== segment.number || read.record.entry.index !== index) {
          const reason = read.status === 'decoded' ? 'record identity does not match its position' : 'reason' in read ? read.reason : 'record missing';
          return storageFailure({ kind: read.status === 'decoded' ? 'misdirected' : 'corruption', file: segment.path, offset: start + offset, index, reason });
        }
        if (entries.length > 0 && bytes + read.record.entry.data.length > bytesMax) return ok(entries);
        entries.push(read.record.entry);
        bytes += read.record.entry.data.length;
        offset += read.bytes;
      }
    }
    return ok(entries);
  }

  /**
   * Appends `entries` (consecutive indices). If the first index is at or below
   * the last stored one, the stored suffix from there on is replaced. Resolves
   * once the entries are durable. A gap, a non-consecutive batch or an epoch
   * that goes backwards is a programmer error and rejects.
   */
  append(entries: readonly Entry[]): Promise<Result<null>> {
    if (entries.length === 0) return Promise.resolve(ok(null));
    this.assertAppendable(entries);
    let bytes = 0;
    for (const entry of entries) bytes += entryRecordBytes(entry);
    this.appendCalls += 1;
    return new Promise((resolve, reject) => {
      this.enqueue({ type: 'append', entries, bytes, settle: resolve, fail: reject }, resolve);
    });
  }

  /** Removes every entry at or after `fromIndex`; the next append must start there. */
  truncateSuffix(fromIndex: number): Promise<Result<null>> {
    assertIndex(fromIndex);
    return new Promise((resolve) => this.enqueue({ type: 'truncate-suffix', fromIndex, settle: resolve }, resolve));
  }

  /**
   * Deletes whole segments whose entries are all at or below `uptoIndex`
   * (covered by a durable snapshot). The last segment is always kept so the
   * log still knows where it ends.
   */
  compactPrefix(uptoIndex: number): Promise<Result<null>> {
    assertIndex(uptoIndex);
    return new Promise((resolve) => this.enqueue({ type: 'compact-prefix', uptoIndex, settle: resolve }, resolve));
  }

  /** Deletes every segment; the next append must start at `nextIndex` (after an installed snapshot). */
  reset(nextIndex: number): Promise<Result<null>> {
    assertIndex(nextIndex);
    return new Promise((resolve) => this.enqueue({ type: 'reset', nextIndex, settle: resolve }, resolve));
  }

  setFsyncDelayMs(delayMs: number): void {
    this.disk.setFsyncDelayMs(delayMs);
  }

  stats(): WalStats {
    return {
      ...this.disk.stats(),
      segmentCount: this.segments.length,
      segmentBytes: this.segments.reduce((sum, segment) => sum + segment.bytes, 0),
      firstIndex: this.firstIndex(),
      lastIndex: this.lastIndex(),
      appendCalls: this.appendCalls,
      entriesAppended: this.entriesAppended,
      groupCommits: this.groupCommits,
      pendingOperations: this.queue.length,
    };
  }

  /** Finishes every queued operation, then closes the open segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.whenDrained();
    await this.active?.handle.close();
    this.active = null;
  }

  // ---- queue ----

  private enqueue(operation: Operation, settle: Settle): void {
    if (this.closed) return settle(err('storage_closed', 'the WAL is closed'));
    if (this.failure !== null) return settle(err(this.failure.code, this.failure.message));
    if (this.queue.length >= this.limits.pendingOperationsMax) {
      return settle(err('storage_overloaded', `more than ${this.limits.pendingOperationsMax} WAL operations are waiting`));
    }
    this.queue.push(operation);
    if (this.draining || this.drainScheduled) return;
    // Start on the next microtask so that appends issued in the same turn share one fsync.
    this.drainScheduled = true;
    this.drained = new Promise((resolve) => {
      queueMicrotask(() => {
        this.drainScheduled = false;
        void this.drain().then(resolve);
      });
    });
  }

  private async whenDrained(): Promise<void> {
    while (this.draining || this.drainScheduled || this.queue.length > 0) await this.drained;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (;;) {
        const head = this.queue[0];
        if (head === undefined) break;
        if (head.type !== 'append') {
          this.queue.shift();
          await this.runGuarded([head], () => this.runMaintenance(head));
          continue;
        }
        const batch = this.takeAppendBatch();
        await this.runGuarded(batch, () => this.commitAppends(batch));
      }
    } finally {
      this.draining = false;
    }
  }

  /** Consecutive appends from the head of the queue, up to `batchBytesMax` (always at least one). */
  private takeAppendBatch(): AppendOperation[] {
    const batch: AppendOperation[] = [];
    let bytes = 0;
    for (;;) {
      const head = this.queue[0];
      if (head === undefined || head.type !== 'append') break;
      if (batch.length > 0 && bytes + head.bytes > this.limits.batchBytesMax) break;
      this.queue.shift();
      batch.push(head);
      bytes += head.bytes;
    }
    return batch;
  }

  /** An I/O failure poisons the log: after a failed fsync the page cache can no longer be trusted (fsyncgate). */
  private async runGuarded(operations: readonly Operation[], run: () => Promise<void>): Promise<void> {
    if (this.failure !== null) {
      for (const operation of operations) operation.settle(err(this.failure.code, this.failure.message));
      return;
    }
    try {
      await run();
    } catch (error) {
      this.failure = { code: 'storage_io', message: `WAL write failed, the log refuses further writes: ${describeError(error)}` };
      for (const operation of operations) operation.settle(err(this.failure.code, this.failure.message));
      for (const waiting of this.queue.splice(0)) waiting.settle(err(this.failure.code, this.failure.message));
    }
  }

  private async runMaintenance(operation: Exclude<Operation, AppendOperation>): Promise<void> {
    if (operation.type === 'truncate-suffix') await this.cutSuffix(operation.fromIndex);
    else if (operation.type === 'compact-prefix') await this.cutPrefix(operation.uptoIndex);
    else await this.removeAll(operation.nextIndex);
    operation.settle(ok(null));
  }

  // ---- group commit ----

  private async commitAppends(batch: readonly AppendOperation[]): Promise<void> {
    const accepted: AppendOperation[] = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (this.active === null || pending.length === 0) return;
      await writeFully(this.active.handle, pending, this.active.segment.bytes - pendingBytes);
      pending = [];
      pendingBytes = 0;
    };

    for (const operation of batch) {
      const first = operation.entries[0];
      if (first === undefined) continue;
      const problem = this.checkContinuity(first);
      if (problem !== null) {
        operation.fail(new Error(problem));
        continue;
      }
      const nextIndex = this.nextIndex();
      if (nextIndex !== null && first.index < nextIndex) {
        // Suffix replacement: what this batch wrote so far must reach the file before the cut.
        await flush();
        await this.cutSuffix(first.index);
      }
      for (const entry of operation.entries) {
        const active = await this.segmentFor(entry, flush);
        const record = encodeEntryRecord(active.segment.number, entry);
        active.segment.offsets.push(active.segment.bytes);
        active.segment.epochs.push(entry.epoch);
        active.segment.bytes += record.length;
        active.hasher.update(record);
        pending.push(record);
        pendingBytes += record.length;
      }
      accepted.push(operation);
    }
    await flush();
    if (this.active !== null && accepted.length > 0) await this.disk.syncData(this.active.handle);
    this.groupCommits += accepted.length > 0 ? 1 : 0;
    for (const operation of accepted) {
      this.entriesAppended += operation.entries.length;
      operation.settle(ok(null));
    }
  }

  /** Returns the active segment with room for `entry`, sealing and rolling over first if needed. */
  private async segmentFor(entry: Entry, flush: () => Promise<void>): Promise<NonNullable<WriteAheadLog['active']>> {
    const current = this.active;
    if (current !== null) {
      const holdsEntries = current.segment.offsets.length > 0;
      const fits = current.segment.bytes + entryRecordBytes(entry) + sealRecordBytes <= this.limits.segmentBytesMax;
      // An entry larger than a whole segment still gets written, alone in its own segment.
      if (!holdsEntries || fits) return current;
      await flush();
      await this.seal(current);
    }
    return this.createSegment(entry.index);
  }

  private async seal(active: NonNullable<WriteAheadLog['active']>): Promise<void> {
    const segment = active.segment;
    const seal = encodeSealRecord({
      segment: segment.number,
      index: segment.firstIndex + segment.offsets.length - 1,
      epoch: segment.epochs.at(-1) ?? 0,
      contentHash: active.hasher.digest(),
      entryCount: segment.offsets.length,
    });
    await writeFully(active.handle, [seal], segment.bytes);
    // The seal must be durable before the next segment exists: only the last segment may be unsealed.
    await this.disk.syncData(active.handle);
    await active.handle.close();
    segment.bytes += seal.length;
    segment.sealed = true;
    this.active = null;
    const position = this.segments.indexOf(segment);
    this.observer?.sealed(this.sealedInfo(segment, this.segments[position - 1]));
  }

  private sealedInfo(segment: Segment, previous: Segment | undefined): SealedSegmentInfo {
    return {
      segment: segment.number,
      firstIndex: segment.firstIndex,
      lastIndex: segment.firstIndex + segment.offsets.length - 1,
      path: segment.path,
      bytes: segment.bytes,
      previousEpoch: previous?.epochs.at(-1) ?? 0,
    };
  }

  private async createSegment(firstIndex: number): Promise<NonNullable<WriteAheadLog['active']>> {
    const number = this.nextSegmentNumber;
    this.nextSegmentNumber += 1;
    const name = segmentFileName(number, firstIndex);
    const path = join(this.dir, name);
    const header = encodeSegmentHeader({ segment: number, firstIndex });
    const temporaryPath = `${path}${temporarySuffix}`;
    const handle = await open(temporaryPath, 'w+');
    try {
      await writeFully(handle, [header], 0);
      await this.disk.syncData(handle);
      await rename(temporaryPath, path);
      await this.disk.syncDirectory(this.dir);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const segment: Segment = { number, firstIndex, path, offsets: [], epochs: [], bytes: header.length, sealed: false };
    this.segments.push(segment);
    this.emptyNextIndex = null;
    this.active = { segment, handle, hasher: new Xxh64().update(header) };
    return this.active;
  }

  /** Why `first` cannot follow the stored log, or null when it can (directly or by replacing a suffix). */
  private checkContinuity(first: Entry): string | null {
    const nextIndex = this.nextIndex();
    if (nextIndex === null) return null;
    if (first.index > nextIndex) return `append at index ${first.index} leaves a gap: the log continues at index ${nextIndex}`;
    if (this.checkEpochOrder) {
      const previousEpoch = this.epochAt(first.index - 1);
      if (previousEpoch !== null && first.epoch < previousEpoch) {
        return `entry ${first.index} has epoch ${first.epoch}, lower than epoch ${previousEpoch} of entry ${first.index - 1}`;
      }
    }
    return null;
  }

  // ---- suffix, prefix, reset ----

  private async cutSuffix(fromIndex: number): Promise<void> {
    const nextIndex = this.nextIndex();
    if (nextIndex === null || fromIndex >= nextIndex) return;
    // Newest first, each unlink durable before the next, so a crash leaves a prefix of the old log.
    while (this.segments.length > 0) {
      const last = this.segments.at(-1);
      if (last === undefined || last.firstIndex < fromIndex) break;
      await this.removeNewestSegment();
    }
    const holder = this.segments.at(-1);
    if (holder === undefined) {
      this.emptyNextIndex = fromIndex;
      return;
    }
    const keep = fromIndex - holder.firstIndex;
    if (keep >= holder.offsets.length) return;
    const cutOffset = holder.offsets[keep] ?? holder.bytes;
    if (this.active?.segment !== holder) {
      await this.active?.handle.close();
      this.active = null;
    }
    this.observer?.changing(holder.number);
    const handle = this.active?.handle ?? (await open(holder.path, 'r+'));
    await handle.truncate(cutOffset);
    await this.disk.syncData(handle);
    holder.offsets = holder.offsets.slice(0, keep);
    holder.epochs = holder.epochs.slice(0, keep);
    holder.bytes = cutOffset;
    holder.sealed = false;
    // The seal hash covers the whole segment, so it has to be recomputed from the bytes that remain.
    const kept = Buffer.alloc(cutOffset);
    await handle.read(kept, 0, cutOffset, 0);
    this.active = { segment: holder, handle, hasher: new Xxh64().update(kept) };
  }

  private async cutPrefix(uptoIndex: number): Promise<void> {
    // Oldest first, each unlink durable before the next, so a crash leaves a suffix without holes.
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      if (oldest === undefined || oldest.firstIndex + oldest.offsets.length - 1 > uptoIndex) break;
      this.observer?.changing(oldest.number);
      await this.disk.removeDurably(this.dir, oldest.path);
      this.segments.shift();
    }
  }

  private async removeAll(nextIndex: number): Promise<void> {
    while (this.segments.length > 0) await this.removeNewestSegment();
    this.emptyNextIndex = nextIndex;
  }

  private async removeNewestSegment(): Promise<void> {
    const last = this.segments.at(-1);
    if (last === undefined) return;
    if (this.active?.segment === last) {
      await this.active.handle.close();
      this.active = null;
    }
    this.observer?.changing(last.number);
    await this.disk.removeDurably(this.dir, last.path);
    this.segments.pop();
  }

  // ---- helpers ----

  private segmentHolding(index: number): Segment | undefined {
    for (let position = this.segments.length - 1; position >= 0; position -= 1) {
      const segment = this.segments[position];
      if (segment === undefined) continue;
      if (index >= segment.firstIndex) return index < segment.firstIndex + segment.offsets.length ? segment : undefined;
    }
    return undefined;
  }

  private assertAppendable(entries: readonly Entry[]): void {
    const dataBytesMax = this.limits.recordBytesMax - recordBodyHeaderBytes;
    for (const [position, entry] of entries.entries()) {
      assertIndex(entry.index);
      assertIndex(entry.epoch);
      if (entry.data.length > dataBytesMax) throw new RangeError(`entry ${entry.index} holds ${entry.data.length} bytes, more than recordBytesMax allows (${dataBytesMax})`);
      const previous = entries[position - 1];
      if (previous === undefined) continue;
      if (entry.index !== previous.index + 1) throw new RangeError(`entries are not consecutive: ${previous.index} then ${entry.index}`);
      if (this.checkEpochOrder && entry.epoch < previous.epoch) throw new RangeError(`epoch goes backwards at entry ${entry.index}: ${previous.epoch} then ${entry.epoch}`);
    }
  }
}

/**
 * Verifies segments in order and carries what must hold across them: index
 * continuity and epoch order. Pure apart from its own state; no file access.
 */
export class RecoveryScan {
  readonly entries: Entry[] = [];
  private expectedIndex: number | null = null;
  private previousEpoch = 0;

  /** `previousEpoch` seeds stale detection when a scan starts mid-log (the scrubber verifying one sealed segment). */
  constructor(
    private readonly limits: WalLimits,
    private readonly checkEpochOrder: boolean,
    start: { previousEpoch: number } | null = null,
  ) {
    if (start !== null) this.previousEpoch = start.previousEpoch;
  }

  segment(
    path: string,
    named: { segment: number; firstIndex: number },
    bytes: Buffer,
    isLast: boolean,
  ): { ok: true; segment: Segment; tornTail: StorageIssue | null } | { ok: false; issue: StorageIssue } {
    const issue = (kind: StorageIssue['kind'], offset: number, index: number | null, reason: string) => ({ ok: false as const, issue: { kind, file: path, offset, index, reason } });
    const header = decodeSegmentHeader(bytes);
    if (!header.ok) return issue('corruption', 0, null, header.reason);
    if (header.header.segment !== named.segment || header.header.firstIndex !== named.firstIndex) {
      return issue('misdirected', 0, named.firstIndex, `header says segment ${header.header.segment} from index ${header.header.firstIndex}, the file name says segment ${named.segment} from index ${named.firstIndex}`);
    }
    const firstIndex = header.header.firstIndex;
    if (this.expectedIndex !== null && firstIndex !== this.expectedIndex) {
      return issue('corruption', 0, this.expectedIndex, `gap in the log: segment starts at index ${firstIndex}, the previous segment ends at index ${this.expectedIndex - 1}`);
    }
    this.expectedIndex = firstIndex;
    const segment: Segment = { number: named.segment, firstIndex, path, offsets: [], epochs: [], bytes: segmentHeaderBytes, sealed: false };
    let offset = segmentHeaderBytes;
    for (;;) {
      const read = readRecord(bytes, offset, this.limits.recordBytesMax);
      if (read.status === 'end') break;
      const index: number = this.expectedIndex;
      if (read.status !== 'decoded') {
        const tornTail = isLast && !segment.sealed && !hasValidRecordAfter(bytes, offset, named.segment, this.limits.recordBytesMax);
        if (!tornTail) {
          const where = isLast ? (segment.sealed ? 'after the seal' : 'with valid records after it') : 'in a sealed segment';
          return issue('corruption', offset, index, `${read.reason} ${where}`);
        }
        segment.bytes = offset;
        return { ok: true, segment, tornTail: { kind: 'torn-tail', file: path, offset, index, reason: read.reason } };
      }
      if (segment.sealed) return issue('corruption', offset, index, 'a record follows the seal');
      const record = read.record;
      if (record.segment !== named.segment) {
        return issue('misdirected', offset, index, `record belongs to segment ${record.segment}, found in segment ${named.segment}`);
      }
      if (record.type === RecordType.entry) {
        if (record.entry.index !== index) return issue('misdirected', offset, index, `record holds index ${record.entry.index} where index ${index} belongs`);
        if (this.checkEpochOrder && record.entry.epoch < this.previousEpoch) {
          return issue('stale', offset, index, `record has epoch ${record.entry.epoch}, lower than epoch ${this.previousEpoch} before it`);
        }
        segment.offsets.push(offset);
        segment.epochs.push(record.entry.epoch);
        this.entries.push(record.entry);
        this.previousEpoch = record.entry.epoch;
        this.expectedIndex = index + 1;
      } else {
        const lastIndex = index - 1;
        const lastEpoch = segment.epochs.at(-1) ?? 0;
        if (record.index !== lastIndex || record.epoch !== lastEpoch || record.entryCount !== segment.offsets.length) {
          return issue('misdirected', offset, index, `seal claims last index ${record.index}, epoch ${record.epoch}, ${record.entryCount} entries; the segment holds ${segment.offsets.length} entries up to index ${lastIndex} at epoch ${lastEpoch}`);
        }
        const computed = contentHash(bytes.subarray(0, offset));
        if (computed !== record.contentHash) {
          return issue('checksum-mismatch', offset, index, `sealed segment xxh64 mismatch (stored ${record.contentHash.toString(16)}, computed ${computed.toString(16)})`);
        }
        segment.sealed = true;
      }
      offset += read.bytes;
      segment.bytes = offset;
    }
    if (!isLast && !segment.sealed) return issue('corruption', offset, this.expectedIndex, 'a segment that is not the last one has no seal');
    return { ok: true, segment, tornTail: null };
  }
}

/**
 * A torn write leaves garbage only at the end. If a valid record of this
 * segment starts anywhere after a damaged one, the damage is in the middle of
 * acknowledged data and must not be truncated.
 */
function hasValidRecordAfter(bytes: Buffer, damagedOffset: number, segment: number, recordBytesMax: number): boolean {
  for (let offset = damagedOffset + 1; offset + recordOverheadBytes <= bytes.length; offset += 1) {
    if (isValidRecordAt(bytes, offset, segment, recordBytesMax)) return true;
  }
  return false;
}

function segmentReadBytesMax(limits: WalLimits): number {
  // A segment can exceed segmentBytesMax by one oversized record; leave room for a smaller configured limit than the one it was written with.
  return Math.max(limits.segmentBytesMax, walLimitsDefault.segmentBytesMax) + limits.recordBytesMax + sealRecordBytes + segmentHeaderBytes;
}

function assertLimits(limits: WalLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`WAL limit ${name} must be a positive integer, got ${String(value)}`);
  }
  if (limits.segmentBytesMax < segmentHeaderBytes + recordOverheadBytes + sealRecordBytes) throw new RangeError('segmentBytesMax is too small to hold one record');
  if (limits.recordBytesMax < recordBodyHeaderBytes) throw new RangeError('recordBytesMax is too small to hold a record header');
}

function assertIndex(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`expected a non-negative safe integer, got ${value}`);
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
