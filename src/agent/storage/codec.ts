import { crc32c } from '@node-rs/crc32';
import { xxh64 } from '@node-rs/xxhash';
import type { Entry, EntryKind } from '../consensus/engine';

/**
 * The on-disk encoding of WAL segments (see README.md in this folder). Every
 * function here is pure: it turns bytes into values or an issue, and never
 * touches a file, so the recovery scan, the future scrubber and the tests share
 * one decoder.
 *
 * Segment file:  header (32 bytes) then records.
 *   header: magic u32 | formatVersion u16 | reserved u16 | segment u64 |
 *           firstIndex u64 | reserved u32 | crc32c u32 (over the 28 bytes before it)
 *   record: bodyLength u32 | crc32c u32 (over the body) | body
 *   body:   recordType u8 | entryKind u8 | reserved u16 | segment u64 | index u64 |
 *           epoch u64 | payload
 * The identity (type, segment, index, epoch) sits inside the checksummed body,
 * so a record that is intact but lies at the wrong position (misdirected write,
 * a stale copy) passes its CRC and still fails the identity check.
 *
 * All integers are little-endian; u64 values are JS numbers and must stay below
 * 2^53 (checked on encode and on decode).
 */

export const segmentMagic = 0x4c415751; // "QWAL" read little-endian
export const segmentFormatVersion = 1;
export const segmentHeaderBytes = 32;
export const recordFrameBytes = 8;
export const recordBodyHeaderBytes = 28;
export const recordOverheadBytes = recordFrameBytes + recordBodyHeaderBytes;
/** The seal payload: xxh64 of everything before the seal (u64) and the entry count (u32). */
export const sealPayloadBytes = 12;
export const sealRecordBytes = recordOverheadBytes + sealPayloadBytes;

export const RecordType = { entry: 1, seal: 2 } as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const entryKindCodes: Readonly<Record<EntryKind, number>> = { normal: 0, noop: 1, config: 2 };
const entryKindsByCode: readonly EntryKind[] = ['normal', 'noop', 'config'];

/**
 * How a piece of storage failed its check. `torn-tail` is the only kind that
 * recovery repairs by itself (an unacknowledged, partly written last record);
 * every other kind stops recovery and is left for the integrity engine.
 */
export type StorageIssueKind = 'torn-tail' | 'corruption' | 'misdirected' | 'stale' | 'checksum-mismatch';

export interface StorageIssue {
  readonly kind: StorageIssueKind;
  /** The file's path. */
  readonly file: string;
  /** Byte offset in the file where the damaged item starts. */
  readonly offset: number;
  /** The log index expected (or claimed) at that position; null when unknown (headers, snapshots, hard state). */
  readonly index: number | null;
  readonly reason: string;
}

export function describeIssue(issue: StorageIssue): string {
  const at = issue.index === null ? '' : `, index ${issue.index}`;
  return `${issue.kind} in ${issue.file} at offset ${issue.offset}${at}: ${issue.reason}`;
}

const twoTo32 = 0x1_0000_0000;

export function writeU64(buffer: Buffer, value: number, offset: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 out of range: ${value}`);
  buffer.writeUInt32LE(value % twoTo32, offset);
  buffer.writeUInt32LE(Math.floor(value / twoTo32), offset + 4);
}

/** Returns null when the stored value does not fit in a safe integer (only damage can do that). */
export function readU64(buffer: Buffer, offset: number): number | null {
  const low = buffer.readUInt32LE(offset);
  const high = buffer.readUInt32LE(offset + 4);
  if (high >= 0x20_0000) return null;
  return high * twoTo32 + low;
}

export function checksum(bytes: Uint8Array): number {
  return crc32c(bytes) >>> 0;
}

export function contentHash(bytes: Uint8Array): bigint {
  return xxh64(bytes);
}

// ---- segment header ----

export interface SegmentHeader {
  readonly segment: number;
  readonly firstIndex: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const buffer = Buffer.alloc(segmentHeaderBytes);
  buffer.writeUInt32LE(segmentMagic, 0);
  buffer.writeUInt16LE(segmentFormatVersion, 4);
  writeU64(buffer, header.segment, 8);
  writeU64(buffer, header.firstIndex, 16);
  buffer.writeUInt32LE(checksum(buffer.subarray(0, 28)), 28);
  return buffer;
}

export type HeaderDecode = { ok: true; header: SegmentHeader } | { ok: false; reason: string };

export function decodeSegmentHeader(bytes: Buffer): HeaderDecode {
  if (bytes.length < segmentHeaderBytes) {
    return { ok: false, reason: `segment header is ${bytes.length} bytes, expected ${segmentHeaderBytes}` };
  }
  const stored = bytes.readUInt32LE(28);
  const computed = checksum(bytes.subarray(0, 28));
  if (stored !== computed) return { ok: false, reason: `segment header CRC32C mismatch (stored ${hex(stored)}, computed ${hex(computed)})` };
  if (bytes.readUInt32LE(0) !== segmentMagic) return { ok: false, reason: 'segment header has a wrong magic number' };
  const version = bytes.readUInt16LE(4);
  if (version !== segmentFormatVersion) return { ok: false, reason: `segment format version ${version} is not supported` };
  const segment = readU64(bytes, 8);
  const firstIndex = readU64(bytes, 16);
  if (segment === null || firstIndex === null) return { ok: false, reason: 'segment header holds an out-of-range number' };
  return { ok: true, header: { segment, firstIndex } };
}

// ---- records ----

export interface EntryRecord {
  readonly type: typeof RecordType.entry;
  readonly segment: number;
  readonly entry: Entry;
}

export interface SealRecord {
  readonly type: typeof RecordType.seal;
  readonly segment: number;
  /** The last entry index of the segment (firstIndex - 1 when it holds none). */
  readonly index: number;
  readonly epoch: number;
  /** xxh64 over every byte of the segment before the seal record. */
  readonly contentHash: bigint;
  readonly entryCount: number;
}

export type WalRecord = EntryRecord | SealRecord;

export function entryRecordBytes(entry: Entry): number {
  return recordOverheadBytes + entry.data.length;
}

function encodeRecord(type: RecordTypeCode, kindCode: number, segment: number, index: number, epoch: number, payload: Uint8Array): Buffer {
  const bodyBytes = recordBodyHeaderBytes + payload.length;
  const buffer = Buffer.allocUnsafe(recordFrameBytes + bodyBytes);
  buffer.writeUInt32LE(bodyBytes, 0);
  buffer.writeUInt8(type, 8);
  buffer.writeUInt8(kindCode, 9);
  buffer.writeUInt16LE(0, 10);
  writeU64(buffer, segment, 12);
  writeU64(buffer, index, 20);
  writeU64(buffer, epoch, 28);
  buffer.set(payload, recordFrameBytes + recordBodyHeaderBytes);
  buffer.writeUInt32LE(checksum(buffer.subarray(recordFrameBytes)), 4);
  return buffer;
}

export function encodeEntryRecord(segment: number, entry: Entry): Buffer {
  return encodeRecord(RecordType.entry, entryKindCodes[entry.kind], segment, entry.index, entry.epoch, entry.data);
}

export function encodeSealRecord(seal: Omit<SealRecord, 'type'>): Buffer {
  const payload = Buffer.alloc(sealPayloadBytes);
  payload.writeBigUInt64LE(seal.contentHash, 0);
  payload.writeUInt32LE(seal.entryCount, 8);
  return encodeRecord(RecordType.seal, 0, seal.segment, seal.index, seal.epoch, payload);
}

/**
 * What the framing layer found at an offset. `incomplete` and `bad-frame` are
 * what a torn write leaves; `decoded` means the CRC matched, and the caller
 * still has to check the identity against the position.
 */
export type RecordRead =
  | { readonly status: 'end' }
  | { readonly status: 'incomplete'; readonly reason: string }
  | { readonly status: 'bad-frame'; readonly reason: string }
  | { readonly status: 'decoded'; readonly record: WalRecord; readonly bytes: number };

export function readRecord(bytes: Buffer, offset: number, recordBytesMax: number): RecordRead {
  const remaining = bytes.length - offset;
  if (remaining === 0) return { status: 'end' };
  if (remaining < recordFrameBytes) return { status: 'incomplete', reason: `only ${remaining} bytes left for an 8-byte record frame` };
  const bodyBytes = bytes.readUInt32LE(offset);
  if (bodyBytes < recordBodyHeaderBytes || bodyBytes > recordBytesMax) {
    return { status: 'bad-frame', reason: `record length ${bodyBytes} is outside [${recordBodyHeaderBytes}, ${recordBytesMax}]` };
  }
  if (bodyBytes > remaining - recordFrameBytes) {
    return { status: 'incomplete', reason: `record of ${bodyBytes} bytes runs past the end of the file (${remaining - recordFrameBytes} left)` };
  }
  const stored = bytes.readUInt32LE(offset + 4);
  const body = bytes.subarray(offset + recordFrameBytes, offset + recordFrameBytes + bodyBytes);
  const computed = checksum(body);
  if (stored !== computed) return { status: 'bad-frame', reason: `record CRC32C mismatch (stored ${hex(stored)}, computed ${hex(computed)})` };
  const decoded = decodeBody(body);
  if (typeof decoded === 'string') return { status: 'bad-frame', reason: decoded };
  return { status: 'decoded', record: decoded, bytes: recordFrameBytes + bodyBytes };
}

function decodeBody(body: Buffer): WalRecord | string {
  const type = body.readUInt8(0);
  const kindCode = body.readUInt8(1);
  const segment = readU64(body, 4);
  const index = readU64(body, 12);
  const epoch = readU64(body, 20);
  if (segment === null || index === null || epoch === null) return 'record holds an out-of-range number';
  const payload = body.subarray(recordBodyHeaderBytes);
  if (type === RecordType.entry) {
    const kind = entryKindsByCode[kindCode];
    if (kind === undefined) return `unknown entry kind ${kindCode}`;
    // Copy so that a restored entry does not pin the whole segment buffer in memory.
    return { type: RecordType.entry, segment, entry: { index, epoch, kind, data: Uint8Array.from(payload) } };
  }
  if (type === RecordType.seal) {
    if (payload.length !== sealPayloadBytes) return `seal payload is ${payload.length} bytes, expected ${sealPayloadBytes}`;
    return {
      type: RecordType.seal,
      segment,
      index,
      epoch,
      contentHash: payload.readBigUInt64LE(0),
      entryCount: payload.readUInt32LE(8),
    };
  }
  return `unknown record type ${type}`;
}

/**
 * Cheap test used while looking for valid records after a damaged one: does a
 * CRC-valid record for this segment start exactly at `offset`? The segment
 * number check first keeps the scan linear in practice.
 */
export function isValidRecordAt(bytes: Buffer, offset: number, segment: number, recordBytesMax: number): boolean {
  if (bytes.length - offset < recordOverheadBytes) return false;
  const bodyBytes = bytes.readUInt32LE(offset);
  if (bodyBytes < recordBodyHeaderBytes || bodyBytes > recordBytesMax || bodyBytes > bytes.length - offset - recordFrameBytes) return false;
  const type = bytes.readUInt8(offset + recordFrameBytes);
  if (type !== RecordType.entry && type !== RecordType.seal) return false;
  if (readU64(bytes, offset + recordFrameBytes + 4) !== segment) return false;
  const body = bytes.subarray(offset + recordFrameBytes, offset + recordFrameBytes + bodyBytes);
  return checksum(body) === bytes.readUInt32LE(offset + 4);
}

// ---- file names ----

const segmentNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export function segmentFileName(segment: number, firstIndex: number): string {
  return `${segment.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

export function parseSegmentFileName(name: string): SegmentHeader | null {
  const match = segmentNamePattern.exec(name);
  if (match === null || match[1] === undefined || match[2] === undefined) return null;
  const segment = Number.parseInt(match[1], 16);
  const firstIndex = Number.parseInt(match[2], 16);
  if (!Number.isSafeInteger(segment) || !Number.isSafeInteger(firstIndex)) return null;
  return { segment, firstIndex };
}

export function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
