import { open } from 'node:fs/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { crc32c } from '@node-rs/crc32';
import { Xxh64 } from '@node-rs/xxhash';
import { RecordType, decodeSegmentHeader, recordBodyHeaderBytes, recordFrameBytes, sealPayloadBytes, segmentHeaderBytes } from '../storage/codec';

/**
 * The scrubber's fast path: verifies a sealed segment while streaming it in
 * large chunks through one bounded buffer, without decoding or copying a
 * single record. Per record it checks the frame, the CRC32C over the body
 * (a subarray, no copy) and the identity read straight from the header bytes
 * (segment, index continuity, epoch order, seal counts); over the whole file
 * it checks the streaming xxh64 against the manifest.
 *
 * It only answers "clean" or "suspect". A suspect segment goes to the detailed
 * verifier (verify.ts, the WAL's own recovery scan), which classifies the
 * damage precisely; that path decodes everything and is far slower, so it
 * runs only when something already failed.
 *
 * The seal record's own xxh64 (over the bytes before it) is not recomputed
 * here: the manifest's whole-file hash was written after the detailed verifier
 * passed the segment at seal time, so a file that still hashes to it is that
 * same verified file.
 */

/** Bytes read per chunk: large sequential reads keep the syscall and threadpool cost per byte low. */
export const scrubReadBytes = 1024 * 1024;
/**
 * Bytes verified between two yields to the event loop. At the speed of the
 * fast path (several hundred MiB/s even with small records) a slice costs
 * about 0.1 ms of CPU, well below one WAL fsync, so a foreground write that
 * becomes ready meanwhile waits at most that long behind the scrubber.
 */
export const scrubSliceBytes = 32 * 1024;
/** Reads of one file; a segment is at most a few dozen chunks, so this only guards against a file that keeps growing. */
const scrubReadsMax = 1_000_000;

const twoTo32 = 0x1_0000_0000;
/** The high word of a u64 that still fits a safe integer is below 2^21. */
const safeHighWordLimit = 0x20_0000;

export interface FastSegmentExpectation {
  readonly segment: number;
  readonly firstIndex: number;
  /** The epoch of the entry before the segment: no entry in it may have a lower one. */
  readonly previousEpoch: number;
  /** The manifest's xxh64 of the whole file. */
  readonly expectedHash: bigint;
  readonly recordBytesMax: number;
}

/**
 * What a chunked scan does with the bytes: `absorb` sees every byte once, in
 * file order, as it is read; `walk` checks whole records in `buffer[start, end)`
 * and returns how many bytes it consumed (0 when the next record is not whole
 * yet). `failure` stops the scan.
 */
export interface ChunkVisitor {
  absorb(bytes: Buffer): void;
  walk(buffer: Buffer, start: number, end: number): number;
  /** The body length the record at `buffer[start]` declares, so the reader can make room for a record larger than its buffer. */
  pendingRecordBytes(buffer: Buffer, start: number, end: number): number | null;
  readonly failure: string | null;
}

/**
 * The routine scrub of a sealed segment: its bytes against the xxh64 the
 * manifest took when it sealed (after a full record-level check). A sealed
 * segment never changes, so any damage there (bit rot, a zeroed sector, a
 * truncation, a misdirected or stale write) changes the hash; only then are
 * its records walked to locate and classify it. This is how block scrubbers
 * (ZFS, the HDFS block scanner) work, and it reads at the hash's speed.
 */
export class SegmentChecksumCheck implements ChunkVisitor {
  private readonly hasher = new Xxh64();
  failure: string | null = null;

  constructor(private readonly expectedHash: bigint) {}

  absorb(bytes: Buffer): void {
    this.hasher.update(bytes);
  }

  walk(_buffer: Buffer, start: number, end: number): number {
    return end - start;
  }

  pendingRecordBytes(): number | null {
    return null;
  }

  finish(): string | null {
    if (this.failure === null && this.hasher.digest() !== this.expectedHash) this.failure = "the segment's xxh64 differs from the manifest's";
    return this.failure;
  }
}

/** Walks the records of one sealed segment; pure apart from its own state, so tests and the benchmark feed it bytes directly. */
export class FastSegmentCheck implements ChunkVisitor {
  private readonly hasher = new Xxh64();
  private readonly segmentLow: number;
  private readonly segmentHigh: number;
  private headerChecked = false;
  private nextIndex: number;
  private previousEpoch: number;
  private lastEntryEpoch = 0;
  private entryCount = 0;
  private sealed = false;
  /** File offset of the next byte `walk` will look at, for the failure message. */
  private fileOffset = 0;
  failure: string | null = null;

  constructor(private readonly expectation: FastSegmentExpectation) {
    this.segmentLow = expectation.segment % twoTo32;
    this.segmentHigh = Math.floor(expectation.segment / twoTo32);
    this.nextIndex = expectation.firstIndex;
    this.previousEpoch = expectation.previousEpoch;
  }

  absorb(bytes: Buffer): void {
    this.hasher.update(bytes);
  }

  walk(buffer: Buffer, start: number, end: number): number {
    let position = start;
    if (!this.headerChecked) {
      if (end - position < segmentHeaderBytes) return 0;
      const header = decodeSegmentHeader(buffer.subarray(position, position + segmentHeaderBytes));
      if (!header.ok) return this.fail(0, header.reason);
      if (header.header.segment !== this.expectation.segment || header.header.firstIndex !== this.expectation.firstIndex) return this.fail(0, 'header identity differs from the file name');
      this.headerChecked = true;
      position += segmentHeaderBytes;
    }
    const recordBytesMax = this.expectation.recordBytesMax;
    // Bounded by `end`: every pass advances by at least one whole frame.
    while (end - position >= recordFrameBytes) {
      const bodyBytes = buffer.readUInt32LE(position);
      if (bodyBytes < recordBodyHeaderBytes || bodyBytes > recordBytesMax) return this.fail(position - start, `record length ${bodyBytes} out of range`);
      const bodyStart = position + recordFrameBytes;
      const recordEnd = bodyStart + bodyBytes;
      if (recordEnd > end) break;
      if (this.sealed) return this.fail(position - start, 'a record follows the seal');
      if (crc32c(buffer.subarray(bodyStart, recordEnd)) >>> 0 !== buffer.readUInt32LE(position + 4)) return this.fail(position - start, 'record CRC32C mismatch');
      const reason = this.checkIdentity(buffer, bodyStart, bodyBytes);
      if (reason !== null) return this.fail(position - start, reason);
      position = recordEnd;
    }
    this.fileOffset += position - start;
    return position - start;
  }

  pendingRecordBytes(buffer: Buffer, start: number, end: number): number | null {
    if (!this.headerChecked) return segmentHeaderBytes;
    if (end - start < recordFrameBytes) return null;
    return recordFrameBytes + buffer.readUInt32LE(start);
  }

  /** Called once the whole file went through; null when the segment is clean. */
  finish(unwalkedBytes: number): string | null {
    if (this.failure !== null) return this.failure;
    if (unwalkedBytes > 0) this.fail(0, `${unwalkedBytes} bytes at the end do not form a whole record`);
    else if (!this.sealed) this.fail(0, 'the segment has no seal');
    else if (this.hasher.digest() !== this.expectation.expectedHash) this.fail(0, "the segment's xxh64 differs from the manifest's");
    return this.failure;
  }

  private checkIdentity(buffer: Buffer, bodyStart: number, bodyBytes: number): string | null {
    if (buffer.readUInt32LE(bodyStart + 4) !== this.segmentLow || buffer.readUInt32LE(bodyStart + 8) !== this.segmentHigh) return 'record belongs to another segment';
    const indexHigh = buffer.readUInt32LE(bodyStart + 16);
    const epochHigh = buffer.readUInt32LE(bodyStart + 24);
    if (indexHigh >= safeHighWordLimit || epochHigh >= safeHighWordLimit) return 'record holds an out-of-range number';
    const index = indexHigh * twoTo32 + buffer.readUInt32LE(bodyStart + 12);
    const epoch = epochHigh * twoTo32 + buffer.readUInt32LE(bodyStart + 20);
    const type = buffer[bodyStart];
    if (type === RecordType.entry) {
      // Entry kinds are 0..2 (normal, noop, config); anything else does not decode.
      if ((buffer[bodyStart + 1] ?? 0xff) > 2) return 'unknown entry kind';
      if (index !== this.nextIndex) return `record holds index ${index} where index ${this.nextIndex} belongs`;
      if (epoch < this.previousEpoch) return `record has epoch ${epoch}, lower than ${this.previousEpoch} before it`;
      this.previousEpoch = epoch;
      this.lastEntryEpoch = epoch;
      this.nextIndex += 1;
      this.entryCount += 1;
      return null;
    }
    if (type === RecordType.seal) {
      if (bodyBytes - recordBodyHeaderBytes !== sealPayloadBytes) return 'seal payload has the wrong size';
      const entryCount = buffer.readUInt32LE(bodyStart + recordBodyHeaderBytes + 8);
      if (index !== this.nextIndex - 1 || epoch !== this.lastEntryEpoch || entryCount !== this.entryCount) return 'seal does not match the records before it';
      this.sealed = true;
      return null;
    }
    return `unknown record type ${type ?? 'none'}`;
  }

  /** `walkedOffset` counts from where the current walk started. */
  private fail(walkedOffset: number, reason: string): 0 {
    this.failure ??= `${reason} (near offset ${this.fileOffset + walkedOffset})`;
    return 0;
  }
}

/** Paces the scan: called after each chunk with the bytes it read. */
export interface ScanPacer {
  consumed(bytes: number): Promise<void>;
}

export interface ChunkedScanOptions {
  /** Reused between files; the scan grows past it only for a single record larger than it, up to `recordBytesMax`. */
  readonly buffer: Buffer;
  readonly sliceBytes: number;
  readonly recordBytesMax: number;
  readonly pacer: ScanPacer | null;
  /** Files larger than this are not scanned (a segment cannot be). */
  readonly fileBytesMax: number;
}

export type ChunkedScan =
  | { readonly status: 'missing' }
  | { readonly status: 'scanned'; readonly bytes: number; readonly unwalkedBytes: number; readonly failure: string | null };

/**
 * Streams a file through `visitor` in chunks of `buffer.length`: each chunk is
 * absorbed (hashed) once, then walked in slices with a yield to the event loop
 * between slices, and the pacer sleeps between chunks. One read is in flight
 * at a time, so the scrubber never queues more than one request in the libuv
 * threadpool ahead of the WAL's writes and fsyncs.
 */
export async function scanFileInChunks(path: string, visitor: ChunkVisitor, options: ChunkedScanOptions): Promise<ChunkedScan> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return { status: 'missing' };
    throw error;
  }
  try {
    const size = (await handle.stat()).size;
    if (size > options.fileBytesMax) return { status: 'scanned', bytes: 0, unwalkedBytes: 0, failure: `file is ${size} bytes, more than a segment can hold` };
    let buffer = options.buffer;
    let filled = 0;
    let walked = 0;
    let fileOffset = 0;
    for (let reads = 0; reads < scrubReadsMax && fileOffset < size; reads += 1) {
      if (walked > 0) {
        // Keep the partial record at the end of the chunk: move it to the front, read after it.
        buffer.copyWithin(0, walked, filled);
        filled -= walked;
        walked = 0;
      }
      if (filled === buffer.length) {
        const needed = visitor.pendingRecordBytes(buffer, 0, filled);
        if (needed === null || needed <= buffer.length || needed > options.recordBytesMax + recordFrameBytes) break;
        // One record larger than the chunk: a buffer of exactly its size, bounded by recordBytesMax.
        const larger = Buffer.allocUnsafe(needed);
        buffer.copy(larger, 0, 0, filled);
        buffer = larger;
      }
      const { bytesRead } = await handle.read(buffer, filled, Math.min(buffer.length - filled, size - fileOffset), fileOffset);
      if (bytesRead <= 0) break;
      visitor.absorb(buffer.subarray(filled, filled + bytesRead));
      filled += bytesRead;
      fileOffset += bytesRead;
      walked = await walkInSlices(visitor, buffer, walked, filled, options.sliceBytes);
      if (visitor.failure !== null) return { status: 'scanned', bytes: fileOffset, unwalkedBytes: filled - walked, failure: visitor.failure };
      if (buffer !== options.buffer && walked === filled) {
        // Back to the bounded buffer once the large record is through.
        buffer = options.buffer;
        filled = 0;
        walked = 0;
      }
      await options.pacer?.consumed(bytesRead);
    }
    return { status: 'scanned', bytes: fileOffset, unwalkedBytes: filled - walked, failure: visitor.failure };
  } finally {
    await handle.close();
  }
}

async function walkInSlices(visitor: ChunkVisitor, buffer: Buffer, from: number, to: number, sliceBytes: number): Promise<number> {
  let walked = from;
  // Bounded: each pass consumes at least one record or stops.
  while (walked < to && visitor.failure === null) {
    let consumed = visitor.walk(buffer, walked, Math.min(to, walked + sliceBytes));
    // A record larger than a slice is walked on its own.
    if (consumed === 0 && walked + sliceBytes < to) consumed = visitor.walk(buffer, walked, to);
    if (consumed === 0) break;
    walked += consumed;
    if (walked < to) await yieldToEventLoop();
  }
  return walked;
}

/** The fast check of a segment held in memory (tests and the in-memory benchmark): null when clean, else why it is suspect. */
export function fastCheckSegmentBytes(bytes: Buffer, expectation: FastSegmentExpectation): string | null {
  const check = new FastSegmentCheck(expectation);
  check.absorb(bytes);
  const walked = check.walk(bytes, 0, bytes.length);
  return check.finish(bytes.length - walked);
}
