import { basename } from 'node:path';
import { xxh64 } from '@node-rs/xxhash';
import type { Entry } from '../consensus/engine';
import { RecordType, parseSegmentFileName, readRecord, recordFrameBytes, segmentHeaderBytes, type StorageIssue } from '../storage/codec';
import { checkSnapshotBytes, parseSnapshotName } from '../storage/snapshot-store';
import { RecoveryScan, walLimitsDefault } from '../storage/wal';
import { hashHex } from './manifest';

/**
 * The detailed verifier: the classifier behind the scrubber's fast path (scrub.ts)
 * and the check of every rebuilt segment. It reuses the WAL's own
 * recovery scan, so a segment is classified exactly as a restart would
 * classify it: corruption (a CRC or frame failure: bit rot, a zeroed sector,
 * a cut), misdirected (CRC valid, wrong identity), stale (CRC valid, an epoch
 * older than the log allows), checksum-mismatch (every record passes, the
 * segment's xxh64 does not). A sealed segment is never the log's tail, so no
 * finding here is ever a torn tail.
 */

export interface SegmentCheck {
  /** The epoch of the entry before the segment: the floor for stale detection. */
  readonly previousEpoch: number;
  /** The manifest's xxh64 of the segment (hex); null when the manifest has none yet. */
  readonly expectedHash: string | null;
  readonly recordBytesMax: number;
}

export function verifySealedSegment(path: string, bytes: Buffer, check: SegmentCheck): StorageIssue | null {
  const named = parseSegmentFileName(basename(path));
  if (named === null) return { kind: 'misdirected', file: path, offset: 0, index: null, reason: 'not a segment file name' };
  const scan = new RecoveryScan({ ...walLimitsDefault, recordBytesMax: check.recordBytesMax }, true, { previousEpoch: check.previousEpoch });
  const outcome = scan.segment(path, named, bytes, false);
  if (!outcome.ok) return outcome.issue;
  if (check.expectedHash !== null) {
    const computed = hashHex(xxh64(bytes));
    if (computed !== check.expectedHash) {
      return { kind: 'checksum-mismatch', file: path, offset: 0, index: named.firstIndex, reason: `segment xxh64 ${computed} differs from the manifest's ${check.expectedHash}` };
    }
  }
  return null;
}

export function verifySnapshotFile(path: string, bytes: Buffer): StorageIssue | null {
  const named = parseSnapshotName(basename(path));
  if (named === null) return { kind: 'misdirected', file: path, offset: 0, index: null, reason: 'not a snapshot file name' };
  const checked = checkSnapshotBytes(path, named, bytes);
  return checked.ok ? null : checked.issue;
}

/**
 * What a reader without any check would take from a segment: records parsed by
 * their length fields alone, no CRC, no identity, no hash. Only the tests that
 * show the checks bite use it; nothing in the agent reads this way.
 */
export function decodeSegmentUnchecked(bytes: Buffer): Entry[] {
  const entries: Entry[] = [];
  // Bounded by the file: every step advances by at least one frame.
  for (let offset = segmentHeaderBytes; offset + recordFrameBytes <= bytes.length; ) {
    const read = readRecord(bytes, offset, bytes.length);
    const bodyBytes = bytes.readUInt32LE(offset);
    if (bodyBytes < 28 || offset + recordFrameBytes + bodyBytes > bytes.length) break;
    if (read.status === 'decoded' && read.record.type === RecordType.entry) entries.push(read.record.entry);
    else if (read.status === 'bad-frame') {
      // Without the CRC the bytes are taken as they are: identity and data straight from the (possibly damaged) body.
      const body = bytes.subarray(offset + recordFrameBytes, offset + recordFrameBytes + bodyBytes);
      if (body.readUInt8(0) === RecordType.entry) {
        entries.push({ index: Number(body.readBigUInt64LE(12)), epoch: Number(body.readBigUInt64LE(20)), kind: 'normal', data: Uint8Array.from(body.subarray(28)) });
      }
    }
    offset += recordFrameBytes + bodyBytes;
  }
  return entries;
}
