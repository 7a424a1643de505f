/**
 * Integrity benchmarks (`npx tsx bench/integrity.bench.ts [--record]`, or
 * `npm run bench -- integrity`):
 *
 * 1. Scrub verification throughput against raw CRC32C + xxh64 on the same
 *    files, in the same run, through the same chunked reader: the raw baseline
 *    reads the same 1 MiB chunks into the same buffer, runs CRC32C over exactly
 *    the record spans the verifier checks and xxh64 over the whole file, and
 *    does nothing else. Runs alternate raw/verify so both see the same machine.
 * 2. Foreground single-entry write p99 with the default scrub rate running vs
 *    not: several alternating runs (ABBA order), the median of their p99s,
 *    and the machine's load average, because the machine is shared.
 * 3. The time to rebuild one 4 KiB block from parity.
 *
 * `--record` rewrites only the "## Integrity" section of bench/RESULTS.md,
 * re-reading the file right before writing (others edit their own sections).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crc32c } from '@node-rs/crc32';
import { Xxh64, xxh64 } from '@node-rs/xxhash';
import { IntegrityEngine, encodeSegment, scrubRateBytesPerSecondDefault } from '../src/agent/integrity/engine';
import { hashHex } from '../src/agent/integrity/manifest';
import { computeParity, rebuildMember } from '../src/agent/integrity/parity';
import { FastSegmentCheck, SegmentChecksumCheck, fastCheckSegmentBytes, scanFileInChunks, scrubReadBytes, scrubSliceBytes, type ChunkVisitor } from '../src/agent/integrity/scrub';
import { verifySealedSegment } from '../src/agent/integrity/verify';
import { recordFrameBytes, segmentFileName, segmentHeaderBytes } from '../src/agent/storage/codec';
import { Storage, walLimitsDefault } from '../src/agent/storage';
import { silentLogger } from '../src/shared/logger';
import { err } from '../src/shared/protocol';
import { machineInfo, quantile } from './lib/report';

const mib = 1024 * 1024;
const segmentCount = 16;
const entriesPerSegment = 4000;
const entryDataBytes = 220;
const throughputRuns = 9;
/** Alternating write-latency runs per side (ABBA...): enough for a median, few enough for a shared 2-core machine. */
const latencyRunsPerSide = 3;
const writesPerRun = 1500;
const recordBytesMax = walLimitsDefault.recordBytesMax;

function segmentOf(segment: number, firstIndex: number): Buffer {
  return encodeSegment(
    segment,
    firstIndex,
    Array.from({ length: entriesPerSegment }, (_, offset) => ({ index: firstIndex + offset, epoch: 1, kind: 'normal' as const, data: new Uint8Array(entryDataBytes).fill(offset % 251) })),
  );
}

/**
 * The honest baseline: CRC32C over every record body (the same subarrays the
 * verifier checks, found by the same length fields) and xxh64 over every byte,
 * with no comparison, no identity check and no bookkeeping.
 */
/** The raw baseline of the routine scrub: streaming xxh64 through the same reader, nothing else. */
class RawHash implements ChunkVisitor {
  readonly failure = null;
  private readonly hasher = new Xxh64();

  absorb(bytes: Buffer): void {
    this.hasher.update(bytes);
  }

  walk(_buffer: Buffer, start: number, end: number): number {
    return end - start;
  }

  pendingRecordBytes(): number | null {
    return null;
  }

  digest(): bigint {
    return this.hasher.digest();
  }
}

class RawChecksums implements ChunkVisitor {
  readonly failure = null;
  private readonly hasher = new Xxh64();
  private headerSkipped = false;
  /** Folded CRCs, so the work cannot be optimised away. */
  crcSink = 0;

  absorb(bytes: Buffer): void {
    this.hasher.update(bytes);
  }

  walk(buffer: Buffer, start: number, end: number): number {
    let position = start;
    if (!this.headerSkipped) {
      if (end - position < segmentHeaderBytes) return 0;
      this.headerSkipped = true;
      position += segmentHeaderBytes;
    }
    while (end - position >= recordFrameBytes) {
      const recordEnd = position + recordFrameBytes + buffer.readUInt32LE(position);
      if (recordEnd > end) break;
      this.crcSink ^= crc32c(buffer.subarray(position + recordFrameBytes, recordEnd));
      position = recordEnd;
    }
    return position - start;
  }

  pendingRecordBytes(buffer: Buffer, start: number, end: number): number | null {
    return end - start < recordFrameBytes ? null : recordFrameBytes + buffer.readUInt32LE(start);
  }

  digest(): bigint {
    return this.hasher.digest();
  }
}

interface SegmentFile {
  readonly path: string;
  readonly segment: number;
  readonly firstIndex: number;
  readonly bytes: Buffer;
  readonly hash: bigint;
}

async function timeAsync(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

function timeSync(work: () => void): number {
  const start = performance.now();
  work();
  return performance.now() - start;
}

async function measureThroughput(dir: string): Promise<Record<string, number>> {
  const files: SegmentFile[] = [];
  for (let position = 0; position < segmentCount; position += 1) {
    const segment = position + 1;
    const firstIndex = position * entriesPerSegment + 1;
    const bytes = segmentOf(segment, firstIndex);
    const path = join(dir, segmentFileName(segment, firstIndex));
    await writeFile(path, bytes);
    files.push({ path, segment, firstIndex, bytes, hash: xxh64(bytes) });
  }
  const totalBytes = files.reduce((sum, file) => sum + file.bytes.length, 0);
  const buffer = Buffer.allocUnsafe(scrubReadBytes);
  const scanOptions = { buffer, sliceBytes: scrubSliceBytes, recordBytesMax, pacer: null, fileBytesMax: 1 << 30 };

  const raw = async () => {
    for (const file of files) {
      const visitor = new RawChecksums();
      await scanFileInChunks(file.path, visitor, scanOptions);
      if (visitor.digest() !== file.hash) throw new Error('raw hash differs');
    }
  };
  // The scrubber's routine check of a sealed segment (engine.ts scrubSegment): the file against its manifest hash.
  const rawHash = async () => {
    for (const file of files) {
      const visitor = new RawHash();
      await scanFileInChunks(file.path, visitor, scanOptions);
      if (visitor.digest() !== file.hash) throw new Error('raw hash differs');
    }
  };
  const routine = async () => {
    for (const file of files) {
      const check = new SegmentChecksumCheck(file.hash);
      const scanned = await scanFileInChunks(file.path, check, scanOptions);
      if (scanned.status !== 'scanned' || check.finish() !== null) throw new Error(`clean segment ${file.segment} flagged by the routine scrub`);
    }
  };
  const verify = async () => {
    for (const file of files) {
      const check = new FastSegmentCheck({ segment: file.segment, firstIndex: file.firstIndex, previousEpoch: 0, expectedHash: file.hash, recordBytesMax });
      const scanned = await scanFileInChunks(file.path, check, scanOptions);
      if (scanned.status !== 'scanned' || check.finish(scanned.unwalkedBytes) !== null) throw new Error(`clean segment ${file.segment} flagged`);
    }
  };
  const rawInMemory = () => {
    for (const file of files) {
      const visitor = new RawChecksums();
      visitor.absorb(file.bytes);
      visitor.walk(file.bytes, 0, file.bytes.length);
      visitor.digest();
    }
  };
  const verifyInMemory = () => {
    for (const file of files) {
      if (fastCheckSegmentBytes(file.bytes, { segment: file.segment, firstIndex: file.firstIndex, previousEpoch: 0, expectedHash: file.hash, recordBytesMax }) !== null) throw new Error('flagged');
    }
  };
  const detailedInMemory = () => {
    for (const file of files) {
      if (verifySealedSegment(file.path, file.bytes, { previousEpoch: 0, expectedHash: hashHex(file.hash), recordBytesMax }) !== null) throw new Error('flagged');
    }
  };

  await raw(); // warms the page cache and the JIT for both paths
  await verify();
  await routine();
  const best = { raw: Infinity, verify: Infinity, rawHash: Infinity, routine: Infinity, rawInMemory: Infinity, verifyInMemory: Infinity, detailedInMemory: Infinity };
  for (let run = 0; run < throughputRuns; run += 1) {
    // Alternating, so a burst of load from other work on the machine hits both sides alike.
    best.raw = Math.min(best.raw, await timeAsync(raw));
    best.verify = Math.min(best.verify, await timeAsync(verify));
    best.rawHash = Math.min(best.rawHash, await timeAsync(rawHash));
    best.routine = Math.min(best.routine, await timeAsync(routine));
    best.rawInMemory = Math.min(best.rawInMemory, timeSync(rawInMemory));
    best.verifyInMemory = Math.min(best.verifyInMemory, timeSync(verifyInMemory));
  }
  best.detailedInMemory = Math.min(timeSync(detailedInMemory), timeSync(detailedInMemory));
  const rate = (ms: number) => totalBytes / mib / (ms / 1000);
  return {
    totalMiB: totalBytes / mib,
    rawMiBps: rate(best.raw),
    verifyMiBps: rate(best.verify),
    rawHashMiBps: rate(best.rawHash),
    routineMiBps: rate(best.routine),
    rawInMemoryMiBps: rate(best.rawInMemory),
    verifyInMemoryMiBps: rate(best.verifyInMemory),
    detailedInMemoryMiBps: rate(best.detailedInMemory),
  };
}

async function writeLatencies(scrub: boolean): Promise<{ p99Ms: number; scrubbedBytes: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'qs-bench-int-'));
  try {
    const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    const opened = await Storage.open(dir, { walLimits: { segmentBytesMax: 1 * mib }, walObserver: integrity.walObserver });
    if (!opened.ok) throw new Error(opened.error.message);
    const { storage } = opened.data;
    integrity.attach({ sealedSegments: () => storage.sealedSegments(), rewriteSnapshot: async () => err('unsupported', 'bench') });
    const data = new Uint8Array(256).fill(1);
    let index = 1;
    // Warm-up: enough sealed segments for the scrubber to have work.
    for (let batch = 0; batch < 200; batch += 1) {
      const entries = Array.from({ length: 64 }, () => ({ index: index++, epoch: 1, kind: 'normal' as const, data }));
      await storage.persist({ hardState: null, entries, snapshot: null });
    }
    await integrity.whenIdle();
    let scrubbing = scrub;
    const scrubs = (async () => {
      // Bounded: stops when the measurement ends.
      while (scrubbing) await integrity.scrubNow();
    })();
    const latencies: number[] = [];
    for (let write = 0; write < writesPerRun; write += 1) {
      const start = performance.now();
      await storage.persist({ hardState: null, entries: [{ index: index++, epoch: 1, kind: 'normal', data }], snapshot: null });
      latencies.push(performance.now() - start);
    }
    scrubbing = false;
    await scrubs;
    const scrubbedBytes = integrity.status().bytesScrubbed;
    await storage.close();
    await integrity.stop();
    return { p99Ms: quantile(latencies, 0.99), scrubbedBytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureWriteP99(): Promise<{ without: number[]; withScrub: number[]; scrubbedBytes: number }> {
  const without: number[] = [];
  const withScrub: number[] = [];
  let scrubbedBytes = 0;
  for (let pair = 0; pair < latencyRunsPerSide; pair += 1) {
    // ABBA order: neither side always runs first.
    const order = pair % 2 === 0 ? [false, true] : [true, false];
    for (const scrub of order) {
      const run = await writeLatencies(scrub);
      (scrub ? withScrub : without).push(run.p99Ms);
      if (scrub) scrubbedBytes += run.scrubbedBytes;
    }
  }
  return { without, withScrub, scrubbedBytes };
}

function measureRebuild(): number {
  const segments = Array.from({ length: 4 }, (_, position) => segmentOf(position + 1, position * entriesPerSegment + 1));
  const group = segments.map((bytes, position) => ({ segment: position + 1, bytes, hash: hashHex(xxh64(bytes)) }));
  const parity = computeParity(0, 4096, group);
  const damaged = Buffer.from(group[1]?.bytes ?? Buffer.alloc(0));
  damaged.fill(0, 8192, 12288);
  const others = new Map(group.filter((member) => member.segment !== 2).map((member) => [member.segment, member.bytes] as const));
  let best = Infinity;
  for (let run = 0; run < 20; run += 1) {
    best = Math.min(
      best,
      timeSync(() => {
        const rebuilt = rebuildMember(parity, 2, damaged, others);
        if (!rebuilt.ok || rebuilt.blocksRebuilt !== 1) throw new Error('rebuild failed');
      }),
    );
  }
  return best;
}

function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
  } catch {
    return os.loadavg().map((load) => load.toFixed(2)).join(' ');
  }
}

function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'qs-bench-int-'));
  let throughput: Record<string, number>;
  try {
    throughput = await measureThroughput(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const latency = await measureWriteP99();
  const rebuildMs = measureRebuild();
  const loadAfter = loadAverage();

  const machine = machineInfo();
  const get = (name: string) => throughput[name] ?? Number.NaN;
  const ratioPercent = (get('verifyMiBps') / get('rawMiBps')) * 100;
  const routineRatioPercent = (get('routineMiBps') / get('rawHashMiBps')) * 100;
  const routineVsRawPercent = (get('routineMiBps') / get('rawMiBps')) * 100;
  const ratioInMemoryPercent = (get('verifyInMemoryMiBps') / get('rawInMemoryMiBps')) * 100;
  const p99Without = median(latency.without);
  const p99With = median(latency.withScrub);
  const p99Delta = ((p99With - p99Without) / p99Without) * 100;
  const list = (values: readonly number[]) => values.map((value) => value.toFixed(2)).join(', ');
  const lines = [
    `### ${new Date().toISOString().slice(0, 10)}: checksum-first scrub`,
    `- Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB RAM, ${machine.disk}, node ${machine.node}; load average ${loadBefore} before, ${loadAfter} after (shared machine)`,
    '- Command: `npx tsx bench/integrity.bench.ts --record`',
    `- Scrub verification through the scrubber's chunked reader (${scrubReadBytes / mib} MiB chunks, ${scrubSliceBytes / 1024} KiB slices with a yield between), ${get('totalMiB').toFixed(1)} MiB in ${segmentCount} sealed segments of ${entriesPerSegment} records of ${entryDataBytes} B, page cache warm, best of ${throughputRuns} alternating runs:`,
    `  - **routine scrub of a sealed segment** (the file's xxh64 against the manifest; records are walked only on a mismatch): ${get('routineMiBps').toFixed(0)} MiB/s = **${routineRatioPercent.toFixed(0)} % of raw xxh64** through the same reader (${get('rawHashMiBps').toFixed(0)} MiB/s), ${routineVsRawPercent.toFixed(0)} % of raw CRC32C + xxh64 (aim >= 80 %)`,
    `  - raw CRC32C over the same record spans + streaming xxh64 over the file: ${get('rawMiBps').toFixed(0)} MiB/s`,
    `  - record-level check (used on a mismatch, and for segments without a manifest hash) (CRC32C compare + identity from header bytes + seal + xxh64 vs manifest): ${get('verifyMiBps').toFixed(0)} MiB/s = **${ratioPercent.toFixed(0)} % of raw** (aim >= 80 %)`,
    `  - in memory, no I/O: raw ${get('rawInMemoryMiBps').toFixed(0)} MiB/s, fast verification ${get('verifyInMemoryMiBps').toFixed(0)} MiB/s (${ratioInMemoryPercent.toFixed(0)} %); the detailed classifier (WAL recovery scan, used only after a failed fast check) ${get('detailedInMemoryMiBps').toFixed(0)} MiB/s`,
    `- Foreground single-entry write p99 (${writesPerRun} writes, fsync each, ${latencyRunsPerSide} alternating runs per side, ABBA): median p99 ${p99Without.toFixed(2)} ms without scrub [${list(latency.without)}], ${p99With.toFixed(2)} ms with the default ${scrubRateBytesPerSecondDefault / mib} MiB/s scrub running [${list(latency.withScrub)}]: **${p99Delta >= 0 ? '+' : ''}${p99Delta.toFixed(0)} %** (aim <= +10 %); the scrubber read ${(latency.scrubbedBytes / mib).toFixed(0)} MiB meanwhile`,
    `- Rebuild of one zeroed 4 KiB block of a 1 MiB segment from a 4-segment parity group (CRC check of every block, XOR, verify): ${rebuildMs.toFixed(2)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record')) recordSection(lines);
}

/** Replaces only the newest run of the Integrity section, keeping older runs below it; re-reads the file right before writing. */
function recordSection(lines: readonly string[]): void {
  const resultsPath = join(import.meta.dirname, 'RESULTS.md');
  let current = '';
  try {
    current = readFileSync(resultsPath, 'utf8');
  } catch {
    current = '';
  }
  const heading = '## Integrity\n';
  const start = current.startsWith(heading) ? 0 : current.indexOf(`\n${heading}`) + 1;
  const entry = `${lines.join('\n')}\n`;
  if (start <= 0 && !current.startsWith(heading)) {
    writeFileSync(resultsPath, `${current}${current.endsWith('\n') || current === '' ? '' : '\n'}\n${heading}\n${entry}`);
    return;
  }
  const bodyStart = start + heading.length;
  const next = current.indexOf('\n## ', bodyStart);
  const end = next < 0 ? current.length : next + 1;
  const older = current.slice(bodyStart, end).trim();
  const section = `${heading}\n${entry}${older === '' ? '' : `\n${older}\n`}${next < 0 ? '' : '\n'}`;
  writeFileSync(resultsPath, `${current.slice(0, start)}${section}${current.slice(end)}`);
}

await main();
