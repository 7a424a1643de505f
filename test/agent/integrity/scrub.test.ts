import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { xxh64 } from '@node-rs/xxhash';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSegment } from '../../../src/agent/integrity/engine';
import { FastSegmentCheck, SegmentChecksumCheck, fastCheckSegmentBytes, scanFileInChunks, type FastSegmentExpectation } from '../../../src/agent/integrity/scrub';
import { verifySealedSegment } from '../../../src/agent/integrity/verify';
import { segmentFileName, segmentHeaderBytes } from '../../../src/agent/storage/codec';
import { walLimitsDefault } from '../../../src/agent/storage';
import { TempDirs } from '../storage/helpers';

/**
 * The scrubber's fast path: clean segments pass whatever the chunking (records
 * cut by a chunk edge, a record larger than the whole buffer), and every kind
 * of damage makes it hand the segment to the detailed verifier.
 */

const recordBytesMax = walLimitsDefault.recordBytesMax;
const dirs = new TempDirs();

function segmentWith(dataBytes: readonly number[], epochs: readonly number[] = dataBytes.map(() => 3)): Buffer {
  return encodeSegment(
    7,
    101,
    dataBytes.map((bytes, position) => ({ index: 101 + position, epoch: epochs[position] ?? 3, kind: 'normal' as const, data: new Uint8Array(bytes).fill(position % 251) })),
  );
}

function expectationOf(bytes: Buffer, previousEpoch = 2): FastSegmentExpectation {
  return { segment: 7, firstIndex: 101, previousEpoch, expectedHash: xxh64(bytes), recordBytesMax };
}

async function scanThroughFile(bytes: Buffer, expectation: FastSegmentExpectation, bufferBytes: number, sliceBytes: number): Promise<string | null> {
  const dir = await dirs.make('quorumscope-scrub-');
  const path = join(dir, segmentFileName(7, 101));
  await writeFile(path, bytes);
  const check = new FastSegmentCheck(expectation);
  const scanned = await scanFileInChunks(path, check, { buffer: Buffer.alloc(bufferBytes), sliceBytes, recordBytesMax, pacer: null, fileBytesMax: 1 << 30 });
  if (scanned.status === 'missing') throw new Error('file vanished');
  return scanned.failure ?? check.finish(scanned.unwalkedBytes);
}

afterAll(async () => {
  await dirs.removeAll();
});

describe('the fast scrub check', () => {
  const clean = segmentWith(Array.from({ length: 300 }, (_, position) => 20 + (position % 7) * 13));

  it('passes a clean sealed segment held in memory', () => {
    expect(fastCheckSegmentBytes(clean, expectationOf(clean))).toBeNull();
  });

  it('passes a clean segment streamed in small chunks whose edges cut records, walked in small slices', async () => {
    expect(await scanThroughFile(clean, expectationOf(clean), 1000, 300)).toBeNull();
  });

  it('passes a segment holding a record larger than the whole read buffer', async () => {
    const large = segmentWith([50, 9000, 50]);
    expect(await scanThroughFile(large, expectationOf(large), 4096, 1024)).toBeNull();
  });

  it('flags a flipped bit in a record body by its CRC32C alone, as the detailed verifier does', async () => {
    const damaged = Buffer.from(clean);
    damaged[segmentHeaderBytes + 500] = (damaged[segmentHeaderBytes + 500] ?? 0) ^ 0x04;
    // The expected hash is the damaged file's own, so only the per-record check can catch it.
    expect(fastCheckSegmentBytes(damaged, expectationOf(damaged))).toMatch(/CRC32C/);
    expect(await scanThroughFile(damaged, expectationOf(damaged), 1000, 300)).toMatch(/CRC32C/);
    expect(verifySealedSegment(`/x/${segmentFileName(7, 101)}`, damaged, { previousEpoch: 2, expectedHash: null, recordBytesMax })).not.toBeNull();
  });

  it('flags a record whose epoch is lower than the one before the segment (stale)', () => {
    const stale = segmentWith([30, 30], [1, 1]);
    expect(fastCheckSegmentBytes(stale, expectationOf(stale, 2))).toMatch(/epoch/);
  });

  it('flags a file whose bytes all check but whose xxh64 differs from the manifest', () => {
    expect(fastCheckSegmentBytes(clean, { ...expectationOf(clean), expectedHash: xxh64(clean) ^ 1n })).toMatch(/xxh64/);
  });

  it('flags a segment cut short and one without its seal', () => {
    expect(fastCheckSegmentBytes(clean.subarray(0, clean.length - 5), expectationOf(clean))).not.toBeNull();
    const withoutSeal = clean.subarray(0, clean.length - 48);
    expect(fastCheckSegmentBytes(withoutSeal, { ...expectationOf(withoutSeal) })).toMatch(/seal/);
  });

  it('flags a segment checked under another segment number or first index (misdirected)', () => {
    expect(fastCheckSegmentBytes(clean, { ...expectationOf(clean), segment: 8 })).toMatch(/header/);
    expect(fastCheckSegmentBytes(clean, { ...expectationOf(clean), firstIndex: 102 })).toMatch(/header/);
  });
});

describe('the routine checksum scrub of a sealed segment', () => {
  const clean = segmentWith(Array.from({ length: 200 }, (_, position) => 30 + (position % 5) * 11));

  async function checksumScan(bytes: Buffer, expected: bigint): Promise<string | null> {
    const dir = await dirs.make('quorumscope-scrub-sum-');
    const path = join(dir, segmentFileName(7, 101));
    await writeFile(path, bytes);
    const check = new SegmentChecksumCheck(expected);
    const scanned = await scanFileInChunks(path, check, { buffer: Buffer.alloc(4096), sliceBytes: 1024, recordBytesMax, pacer: null, fileBytesMax: 1 << 30 });
    if (scanned.status === 'missing') throw new Error('file vanished');
    return scanned.failure ?? check.finish();
  }

  it('passes a clean segment read in chunks', async () => {
    expect(await checksumScan(clean, xxh64(clean))).toBeNull();
  });

  it('flags one flipped bit anywhere in the file', async () => {
    for (const offset of [0, segmentHeaderBytes + 3, Math.floor(clean.length / 2), clean.length - 1]) {
      const damaged = Buffer.from(clean);
      damaged[offset] = (damaged[offset] ?? 0) ^ 0x10;
      expect(await checksumScan(damaged, xxh64(clean))).toMatch(/xxh64/);
    }
  });

  it('flags a truncated segment', async () => {
    expect(await checksumScan(clean.subarray(0, clean.length - 100), xxh64(clean))).toMatch(/xxh64/);
  });
});
