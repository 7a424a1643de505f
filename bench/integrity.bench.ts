/**
 * Integrity benchmarks (`npx tsx bench/integrity.bench.ts`): scrub verification
 * throughput against raw CRC32C and xxh64 on the same bytes in the same run,
 * foreground write p99 with the default scrub rate running vs not, and the
 * time to rebuild one 4 KiB block from parity.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crc32c } from '@node-rs/crc32';
import { xxh64 } from '@node-rs/xxhash';
import { IntegrityEngine, encodeSegment } from '../src/agent/integrity/engine';
import { computeParity, rebuildMember } from '../src/agent/integrity/parity';
import { hashHex } from '../src/agent/integrity/manifest';
import { verifySealedSegment } from '../src/agent/integrity/verify';
import { Storage, walLimitsDefault } from '../src/agent/storage';
import { silentLogger } from '../src/shared/logger';
import { err } from '../src/shared/protocol';

const mib = 1024 * 1024;

function segmentOf(segment: number, firstIndex: number, count: number, dataBytes: number): Buffer {
  return encodeSegment(segment, firstIndex, Array.from({ length: count }, (_, offset) => ({ index: firstIndex + offset, epoch: 1, kind: 'normal' as const, data: new Uint8Array(dataBytes).fill(offset % 251) })));
}

function bestOf(runs: number, work: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < runs; run += 1) {
    const start = performance.now();
    work();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? 0;
}

async function writeLatencies(dir: string, scrub: boolean): Promise<number[]> {
  const integrity = await IntegrityEngine.open({ dataDir: dir, recordBytesMax: walLimitsDefault.recordBytesMax, clock: { nowMs: () => Date.now() }, logger: silentLogger });
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
  for (let write = 0; write < 1500; write += 1) {
    const start = performance.now();
    await storage.persist({ hardState: null, entries: [{ index: index++, epoch: 1, kind: 'normal', data }], snapshot: null });
    latencies.push(performance.now() - start);
  }
  scrubbing = false;
  await scrubs;
  await storage.close();
  await integrity.stop();
  return latencies;
}

async function main(): Promise<void> {
  // 1. Verification throughput on 16 sealed 1 MiB segments held in memory (no disk in the loop).
  const segments = Array.from({ length: 16 }, (_, position) => segmentOf(position + 1, position * 4000 + 1, 4000, 220));
  const totalBytes = segments.reduce((sum, segment) => sum + segment.length, 0);
  const hashes = segments.map((segment) => hashHex(xxh64(segment)));
  const runs = 5;
  const crcMs = bestOf(runs, () => segments.forEach((segment) => crc32c(segment)));
  const xxhMs = bestOf(runs, () => segments.forEach((segment) => xxh64(segment)));
  const rawMs = bestOf(runs, () => segments.forEach((segment) => { crc32c(segment); xxh64(segment); }));
  const verifyMs = bestOf(runs, () =>
    segments.forEach((segment, position) => {
      const issue = verifySealedSegment(`/bench/${(position + 1).toString(16).padStart(16, '0')}-${(position * 4000 + 1).toString(16).padStart(16, '0')}.wal`, segment, { previousEpoch: 0, expectedHash: hashes[position] ?? null, recordBytesMax: walLimitsDefault.recordBytesMax });
      if (issue !== null) throw new Error(issue.reason);
    }),
  );
  const rate = (ms: number) => totalBytes / mib / (ms / 1000);

  // 2. Foreground write p99, default scrub rate running vs not.
  const dirA = await mkdtemp(join(tmpdir(), 'qs-bench-int-'));
  const dirB = await mkdtemp(join(tmpdir(), 'qs-bench-int-'));
  let without: number[] = [];
  let withScrub: number[] = [];
  try {
    without = await writeLatencies(dirA, false);
    withScrub = await writeLatencies(dirB, true);
  } finally {
    await rm(dirA, { recursive: true, force: true });
    await rm(dirB, { recursive: true, force: true });
  }

  // 3. Rebuild one damaged 4 KiB block of a 1 MiB member from a 4-segment group's parity.
  const group = segments.slice(0, 4).map((bytes, position) => ({ segment: position + 1, bytes, hash: hashes[position] ?? '' }));
  const parity = computeParity(0, 4096, group);
  const damaged = Buffer.from(group[1]?.bytes ?? Buffer.alloc(0));
  damaged.fill(0, 8192, 12288);
  const others = new Map(group.filter((member) => member.segment !== 2).map((member) => [member.segment, member.bytes] as const));
  const rebuildMs = bestOf(20, () => {
    const rebuilt = rebuildMember(parity, 2, damaged, others);
    if (!rebuilt.ok || rebuilt.blocksRebuilt !== 1) throw new Error('rebuild failed');
  });

  const lines = [
    `- Scrub verification (CRC32C per record + identity + segment xxh64) on ${(totalBytes / mib).toFixed(1)} MiB in memory: ${rate(verifyMs).toFixed(0)} MiB/s`,
    `  - raw CRC32C ${rate(crcMs).toFixed(0)} MiB/s, raw xxh64 ${rate(xxhMs).toFixed(0)} MiB/s, raw CRC32C+xxh64 over the same bytes ${rate(rawMs).toFixed(0)} MiB/s`,
    `  - verification reaches ${((rawMs / verifyMs) * 100).toFixed(0)} % of raw CRC32C+xxh64 (aim >= 80 %)`,
    `- Foreground single-entry write p99 (1,500 writes, fsync each): ${p99(without).toFixed(2)} ms without scrub, ${p99(withScrub).toFixed(2)} ms with the default 8 MiB/s scrub running (${(((p99(withScrub) - p99(without)) / p99(without)) * 100).toFixed(0)} %; aim <= 10 %)`,
    `- Rebuild of one zeroed 4 KiB block of a 1 MiB segment from a 4-segment parity group (CRC check of every block, XOR, verify): ${rebuildMs.toFixed(2)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record')) {
    const resultsPath = join(import.meta.dirname, 'RESULTS.md');
    const current = await readFile(resultsPath, 'utf8').catch(() => '');
    const heading = current.includes('\n## Integrity\n') || current.startsWith('## Integrity\n') ? '' : '\n## Integrity\n';
    await writeFile(resultsPath, `${current}${heading}\n### ${new Date().toISOString().slice(0, 10)} (${process.platform}, node ${process.version})\n${lines.join('\n')}\n`);
  }
}

await main();
