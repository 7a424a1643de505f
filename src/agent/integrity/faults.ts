import type { SeededRandom } from '../../shared/random';
import {
  RecordType,
  checksum,
  readRecord,
  readU64,
  segmentHeaderBytes,
  writeU64,
  type StorageIssueKind,
} from '../storage/codec';
import { decodeSnapshot, encodeSnapshot, snapshotHeaderBytes } from '../storage/snapshot-store';

/**
 * Fault injection for drills and tests: pure functions from a file's bytes to
 * damaged bytes plus what was done and how the verifier must classify it. The
 * expected class follows from the fault model alone (a flipped byte under a
 * CRC is corruption, a copied valid record is misdirected...), not from the
 * verifier, so the tests compare two independent answers.
 */

export type FaultKind = 'bit-flip' | 'zero-sector' | 'truncate' | 'misdirect' | 'stale';
export const faultKinds: readonly FaultKind[] = ['bit-flip', 'zero-sector', 'truncate', 'misdirect', 'stale'];
export const sectorBytes = 4096;

export interface InjectedFault {
  readonly fault: FaultKind;
  readonly offset: number;
  /** Bytes changed or removed. */
  readonly bytes: number;
  readonly expected: StorageIssueKind;
  readonly detail: string;
}

export type Injection = { ok: true; damaged: Buffer; injected: InjectedFault } | { ok: false; reason: string };

interface RecordSpan {
  readonly offset: number;
  readonly bytes: number;
  readonly segment: number;
  readonly index: number;
  readonly epoch: number;
}

/** The entry records of a (valid) segment, in order. */
export function entryRecordSpans(segment: Buffer, recordBytesMax: number): RecordSpan[] {
  const spans: RecordSpan[] = [];
  for (let offset = segmentHeaderBytes; offset < segment.length; ) {
    const read = readRecord(segment, offset, recordBytesMax);
    if (read.status !== 'decoded') break;
    if (read.record.type === RecordType.entry) {
      spans.push({ offset, bytes: read.bytes, segment: read.record.segment, index: read.record.entry.index, epoch: read.record.entry.epoch });
    }
    offset += read.bytes;
  }
  return spans;
}

/** Re-encodes the record at `span` with a new identity: same length, valid CRC. */
function reencode(segment: Buffer, span: RecordSpan, identity: { segment: number; index: number; epoch: number }): Buffer {
  const record = Buffer.from(segment.subarray(span.offset, span.offset + span.bytes));
  writeU64(record, identity.segment, 12);
  writeU64(record, identity.index, 20);
  writeU64(record, identity.epoch, 28);
  record.writeUInt32LE(checksum(record.subarray(8)), 4);
  return record;
}

export interface SegmentFaultContext {
  readonly recordBytesMax: number;
  /** The epoch before the segment's first entry (stale needs a non-zero floor). */
  readonly previousEpoch: number;
  /** Other sealed segments' bytes: where a misdirected copy may come from. */
  readonly donors: readonly Buffer[];
}

export function injectSegmentFault(segment: Buffer, fault: FaultKind, random: SeededRandom, context: SegmentFaultContext): Injection {
  const damaged = Buffer.from(segment);
  switch (fault) {
    case 'bit-flip': {
      const offset = random.int(0, segment.length - 1);
      const bit = random.int(0, 7);
      damaged[offset] = (damaged[offset] ?? 0) ^ (1 << bit);
      return { ok: true, damaged, injected: { fault, offset, bytes: 1, expected: 'corruption', detail: `flipped bit ${bit} of byte ${offset}` } };
    }
    case 'zero-sector': {
      // Bounded: a sector that is already all zeros changes nothing, so another is tried.
      for (let attempt = 0; attempt < 64; attempt += 1) {
        const sector = random.int(0, Math.ceil(segment.length / sectorBytes) - 1);
        const offset = sector * sectorBytes;
        const end = Math.min(segment.length, offset + sectorBytes);
        if (segment.subarray(offset, end).every((byte) => byte === 0)) continue;
        damaged.fill(0, offset, end);
        return { ok: true, damaged, injected: { fault, offset, bytes: end - offset, expected: 'corruption', detail: `zeroed the 4 KiB sector at ${offset}` } };
      }
      return { ok: false, reason: 'every sector tried was already zero' };
    }
    case 'truncate': {
      const offset = random.int(0, segment.length - 1);
      return { ok: true, damaged: damaged.subarray(0, offset), injected: { fault, offset, bytes: segment.length - offset, expected: 'corruption', detail: `cut the segment to ${offset} of ${segment.length} bytes` } };
    }
    case 'misdirect': {
      const spans = entryRecordSpans(segment, context.recordBytesMax);
      if (spans.length === 0) return { ok: false, reason: 'the segment holds no entry record' };
      const target = spans[random.int(0, spans.length - 1)];
      if (target === undefined) return { ok: false, reason: 'no target record' };
      // A real copy of another record of the same length (from this segment or a donor) when one exists, else a write meant for the next index.
      const candidates: { bytes: Buffer; span: RecordSpan }[] = [];
      for (const source of [segment, ...context.donors]) {
        for (const span of entryRecordSpans(source, context.recordBytesMax)) {
          if (span.bytes === target.bytes && (span.index !== target.index || span.segment !== target.segment)) candidates.push({ bytes: source, span });
        }
      }
      const donor = candidates.length === 0 ? null : (candidates[random.int(0, candidates.length - 1)] ?? null);
      const copy = donor === null ? reencode(segment, target, { segment: target.segment, index: target.index + 1, epoch: target.epoch }) : donor.bytes.subarray(donor.span.offset, donor.span.offset + donor.span.bytes);
      copy.copy(damaged, target.offset);
      const what = donor === null ? `a record for index ${target.index + 1}` : `record ${donor.span.index} of segment ${donor.span.segment}`;
      return { ok: true, damaged, injected: { fault, offset: target.offset, bytes: target.bytes, expected: 'misdirected', detail: `wrote ${what} over index ${target.index}` } };
    }
    case 'stale': {
      const spans = entryRecordSpans(segment, context.recordBytesMax);
      const eligible = spans.filter((span, position) => (position === 0 ? context.previousEpoch : (spans[position - 1]?.epoch ?? 0)) >= 1);
      const target = eligible.length === 0 ? undefined : eligible[random.int(0, eligible.length - 1)];
      if (target === undefined) return { ok: false, reason: 'no record follows an epoch above 0' };
      const position = spans.indexOf(target);
      const floor = position === 0 ? context.previousEpoch : (spans[position - 1]?.epoch ?? 0);
      reencode(segment, target, { segment: target.segment, index: target.index, epoch: floor - 1 }).copy(damaged, target.offset);
      return { ok: true, damaged, injected: { fault, offset: target.offset, bytes: target.bytes, expected: 'stale', detail: `replaced index ${target.index} with an older version at epoch ${floor - 1}` } };
    }
  }
}

export function injectSnapshotFault(snapshot: Buffer, fault: FaultKind, random: SeededRandom): Injection {
  const damaged = Buffer.from(snapshot);
  const classify = (offset: number): StorageIssueKind => (offset < snapshotHeaderBytes ? 'corruption' : 'checksum-mismatch');
  switch (fault) {
    case 'bit-flip': {
      const offset = random.int(0, snapshot.length - 1);
      const bit = random.int(0, 7);
      damaged[offset] = (damaged[offset] ?? 0) ^ (1 << bit);
      return { ok: true, damaged, injected: { fault, offset, bytes: 1, expected: classify(offset), detail: `flipped bit ${bit} of byte ${offset}` } };
    }
    case 'zero-sector': {
      for (let attempt = 0; attempt < 64; attempt += 1) {
        const offset = random.int(0, Math.ceil(snapshot.length / sectorBytes) - 1) * sectorBytes;
        const end = Math.min(snapshot.length, offset + sectorBytes);
        if (snapshot.subarray(offset, end).every((byte) => byte === 0)) continue;
        damaged.fill(0, offset, end);
        return { ok: true, damaged, injected: { fault, offset, bytes: end - offset, expected: classify(offset), detail: `zeroed the 4 KiB sector at ${offset}` } };
      }
      return { ok: false, reason: 'every sector tried was already zero' };
    }
    case 'truncate': {
      const offset = random.int(0, snapshot.length - 1);
      return { ok: true, damaged: damaged.subarray(0, offset), injected: { fault, offset, bytes: snapshot.length - offset, expected: 'corruption', detail: `cut the snapshot to ${offset} of ${snapshot.length} bytes` } };
    }
    case 'misdirect':
    case 'stale': {
      const decoded = decodeSnapshot(snapshot);
      if (!decoded.ok) return { ok: false, reason: `the snapshot is already damaged: ${decoded.reason}` };
      const { meta } = decoded.snapshot;
      // A newer snapshot written under this name is misdirected; an older one is stale.
      const older = meta.index > 0 ? { index: meta.index - 1, epoch: meta.epoch } : meta.epoch > 0 ? { index: 0, epoch: meta.epoch - 1 } : null;
      if (fault === 'stale' && older === null) return { ok: false, reason: 'no older identity exists below index 0 epoch 0' };
      const identity = fault === 'stale' && older !== null ? older : { index: meta.index + 1, epoch: meta.epoch };
      const replaced = Buffer.concat(encodeSnapshot({ meta: { ...meta, ...identity }, data: decoded.snapshot.data }));
      return {
        ok: true,
        damaged: replaced,
        injected: { fault, offset: 0, bytes: replaced.length, expected: fault === 'stale' ? 'stale' : 'misdirected', detail: `replaced the snapshot with one for index ${identity.index} epoch ${identity.epoch}` },
      };
    }
  }
}

/** The segment number written in a record body, for tests that check a copy's origin. */
export function recordSegmentAt(segment: Buffer, offset: number): number | null {
  return readU64(segment, offset + 12);
}
