import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** The most recent fsync durations kept for percentiles; older ones are overwritten. */
export const fsyncSamplesMaxDefault = 1024;

/** A fixed-capacity ring of recent durations, so that p99 never costs unbounded memory. */
export class DurationRing {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.samples = new Float64Array(capacity);
  }

  push(durationMs: number): void {
    this.samples[this.next] = durationMs;
    this.next = (this.next + 1) % this.capacity;
    this.filled = Math.min(this.filled + 1, this.capacity);
  }

  /** Oldest first. */
  values(): number[] {
    const start = this.filled < this.capacity ? 0 : this.next;
    const out: number[] = [];
    for (let i = 0; i < this.filled; i += 1) out.push(this.samples[(start + i) % this.capacity] ?? 0);
    return out;
  }

  /** The q-quantile (0..1) of the kept samples by nearest rank; null when there are none. */
  quantile(q: number): number | null {
    if (this.filled === 0) return null;
    const sorted = this.values().sort((a, b) => a - b);
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[rank] ?? null;
  }
}

export interface FsyncStats {
  readonly fsyncCount: number;
  /** Recent fsync durations (including any injected slow-disk delay), oldest first. */
  readonly fsyncDurationsMs: readonly number[];
  readonly fsyncDurationMsP99: number | null;
}

/**
 * Every fsync in storage goes through one Disk, so that all of them are timed
 * into the same ring and the slow-disk drill delays all of them alike.
 */
export class Disk {
  private readonly durations: DurationRing;
  private fsyncCount = 0;
  private fsyncDelayMs = 0;

  constructor(fsyncSamplesMax = fsyncSamplesMaxDefault) {
    this.durations = new DurationRing(fsyncSamplesMax);
  }

  /** The slow-disk drill: wait this long before every fsync. 0 turns it off. */
  setFsyncDelayMs(delayMs: number): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`fsync delay must be a non-negative number, got ${delayMs}`);
    this.fsyncDelayMs = delayMs;
  }

  /** fdatasync: enough for appends and truncations, whose size change it also flushes. */
  async syncData(handle: FileHandle): Promise<void> {
    await this.timed(() => handle.datasync());
  }

  async syncFull(handle: FileHandle): Promise<void> {
    await this.timed(() => handle.sync());
  }

  /** Makes creations, renames and unlinks in `dir` durable. */
  async syncDirectory(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await this.timed(() => handle.sync());
    } finally {
      await handle.close();
    }
  }

  /**
   * Replaces `path` with the concatenated `chunks` so that a crash leaves either the old or the
   * new content: write a temp file, fsync it, rename over, fsync the directory.
   */
  async writeAtomically(dir: string, path: string, chunks: readonly Uint8Array[]): Promise<void> {
    const temporaryPath = `${path}.tmp`;
    const handle = await open(temporaryPath, 'w');
    try {
      await writeFully(handle, chunks, 0);
      await this.syncFull(handle);
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, path);
    await this.syncDirectory(dir);
  }

  /** Unlinks and makes the unlink durable before returning, so deletions land in the order they are made. */
  async removeDurably(dir: string, path: string): Promise<void> {
    await rm(path, { force: true });
    await this.syncDirectory(dir);
  }

  stats(): FsyncStats {
    return {
      fsyncCount: this.fsyncCount,
      fsyncDurationsMs: this.durations.values(),
      fsyncDurationMsP99: this.durations.quantile(0.99),
    };
  }

  private async timed(sync: () => Promise<void>): Promise<void> {
    const startMs = performance.now();
    if (this.fsyncDelayMs > 0) await sleep(this.fsyncDelayMs);
    await sync();
    this.fsyncCount += 1;
    this.durations.push(performance.now() - startMs);
  }
}

/**
 * Writes `chunks` back to back from `position`. One writev in the common case;
 * loops because a write may legally be short (a nearly full disk), and a short
 * write that went unnoticed would be a hole in the log.
 */
export async function writeFully(handle: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  let remaining = chunks.filter((chunk) => chunk.length > 0);
  let offset = position;
  while (remaining.length > 0) {
    const { bytesWritten } = await handle.writev(remaining, offset);
    if (bytesWritten <= 0) throw new Error(`write made no progress at offset ${offset}`);
    offset += bytesWritten;
    remaining = dropBytes(remaining, bytesWritten);
  }
}

function dropBytes(chunks: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = bytes;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
    skip = 0;
  }
  return rest;
}
