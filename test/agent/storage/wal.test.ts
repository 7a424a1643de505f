import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEntryRecord, type StorageIssue } from '../../../src/agent/storage/codec';
import { WriteAheadLog, type WalLimits, type WalOpened } from '../../../src/agent/storage/wal';
import { TempDirs, dataBytes, flipBit, makeEntries, plain, recordBytes, recordOffset, segmentFiles } from './helpers';

const temp = new TempDirs();
afterEach(() => temp.removeAll());

/** Five 56-byte records plus a seal fit in one segment; the sixth rolls over. */
const smallSegments: Partial<WalLimits> = { segmentBytesMax: 32 + 5 * recordBytes + 48 };

async function openWal(dir: string, limits: Partial<WalLimits> = smallSegments): Promise<WalOpened> {
  const opened = await WriteAheadLog.open(dir, { limits });
  if (!opened.ok) throw new Error(opened.error.message);
  return opened.data;
}

async function openFailure(dir: string, limits: Partial<WalLimits> = smallSegments): Promise<StorageIssue> {
  const opened = await WriteAheadLog.open(dir, { limits });
  if (opened.ok) {
    await opened.data.wal.close();
    throw new Error('expected the WAL to refuse to open');
  }
  if (opened.issue === null) throw new Error(`expected a classified issue, got ${opened.error.message}`);
  return opened.issue;
}

async function writeLog(dir: string, entries = makeEntries(1, 12)): Promise<void> {
  const { wal } = await openWal(dir);
  expect((await wal.append(entries)).ok).toBe(true);
  await wal.close();
}

describe('WriteAheadLog', () => {
  it('reads appended entries back in order after reopening, across segment rollovers', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    const entries = makeEntries(1, 23);
    for (const batch of [entries.slice(0, 4), entries.slice(4, 17), entries.slice(17)]) expect((await wal.append(batch)).ok).toBe(true);
    expect(wal.stats().segmentCount).toBe(5);
    expect(wal.lastIndex()).toBe(23);
    await wal.close();

    const reopened = await openWal(dir);
    expect(plain(reopened.entries)).toEqual(plain(entries));
    expect(reopened.report.tornTail).toBeNull();
    expect(reopened.report.segmentsScanned).toBe(5);
    await reopened.wal.close();
  });

  it('group commit: concurrent appends are covered by far fewer fsyncs, each resolving only after its fsync', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir, {});
    expect((await wal.append(makeEntries(1, 1))).ok).toBe(true);
    const before = wal.stats();
    const appends = 200;
    const fsyncDelayMs = 20;
    wal.setFsyncDelayMs(fsyncDelayMs);
    const startMs = performance.now();
    const entries = makeEntries(2, appends + 1);
    const results = await Promise.all(
      entries.map(async (entry) => {
        const result = await wal.append([entry]);
        return { result, elapsedMs: performance.now() - startMs };
      }),
    );
    const after = wal.stats();
    const fsyncs = after.fsyncCount - before.fsyncCount;
    expect(results.every(({ result }) => result.ok)).toBe(true);
    // No caller may hear "durable" before an fsync (delayed by the drill) has run.
    expect(Math.min(...results.map(({ elapsedMs }) => elapsedMs))).toBeGreaterThanOrEqual(fsyncDelayMs - 1);
    expect(fsyncs).toBeLessThanOrEqual(appends / 20);
    console.info(`group commit: ${appends} appends, ${fsyncs} fsyncs, ${(fsyncs / appends).toFixed(3)} fsyncs per append`);
    await wal.close();

    const reopened = await openWal(dir, {});
    expect(reopened.entries.map((entry) => entry.index)).toEqual(Array.from({ length: appends + 1 }, (_, i) => i + 1));
    await reopened.wal.close();
  });

  it('group commit: appends that arrive while an fsync runs join the next one', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir, {});
    expect((await wal.append(makeEntries(1, 1))).ok).toBe(true);
    wal.setFsyncDelayMs(10);
    const before = wal.stats().fsyncCount;
    const appends = 100;
    const pending: Promise<unknown>[] = [];
    // One append per millisecond against a 10 ms fsync: about ten appends per commit.
    for (const entry of makeEntries(2, appends + 1)) {
      pending.push(wal.append([entry]));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(pending);
    const fsyncs = wal.stats().fsyncCount - before;
    console.info(`staggered group commit: ${appends} appends, ${fsyncs} fsyncs, ${(fsyncs / appends).toFixed(3)} fsyncs per append`);
    expect(fsyncs).toBeLessThanOrEqual(appends / 3);
    await wal.close();
  });

  it('replaces a stored suffix that spans a segment boundary, and the replacement survives reopening', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    expect((await wal.append(makeEntries(1, 14))).ok).toBe(true);
    expect(wal.stats().segmentCount).toBe(3);
    // Index 4 sits in the first segment; segments 2 and 3 must go, segment 1 be cut.
    const replacement = makeEntries(4, 9, 2, 100);
    expect((await wal.append(replacement)).ok).toBe(true);
    expect((await wal.append(makeEntries(10, 10, 2, 100))).ok).toBe(true);
    await wal.close();

    const reopened = await openWal(dir);
    expect(plain(reopened.entries)).toEqual(plain([...makeEntries(1, 3), ...makeEntries(4, 10, 2, 100)]));
    await reopened.wal.close();
  });

  it('truncateSuffix removes the tail so the next append continues from the cut', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    expect((await wal.append(makeEntries(1, 12))).ok).toBe(true);
    expect((await wal.truncateSuffix(6)).ok).toBe(true);
    expect(wal.lastIndex()).toBe(5);
    await expect(wal.append(makeEntries(8, 8))).rejects.toThrow(/gap/);
    expect((await wal.append(makeEntries(6, 7, 3))).ok).toBe(true);
    await wal.close();
    const reopened = await openWal(dir);
    expect(plain(reopened.entries)).toEqual(plain([...makeEntries(1, 5), ...makeEntries(6, 7, 3)]));
    await reopened.wal.close();
  });

  it('cuts a torn tail at every byte offset inside the last record, and reports it', async () => {
    const source = await temp.make();
    await writeLog(source, makeEntries(1, 8));
    const [, lastSegment] = await segmentFiles(source);
    if (lastSegment === undefined) throw new Error('expected two segments');
    const size = (await stat(lastSegment)).size;
    const lastRecordOffset = size - recordBytes;
    expect(lastRecordOffset).toBe(recordOffset(2));

    for (let cut = lastRecordOffset; cut < size; cut += 1) {
      const dir = await temp.copy(source);
      const [, segment] = await segmentFiles(dir);
      if (segment === undefined) throw new Error('expected two segments');
      await truncate(segment, cut);
      const opened = await openWal(dir);
      expect(opened.entries.map((entry) => entry.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      if (cut === lastRecordOffset) expect(opened.report.tornTail).toBeNull();
      else expect(opened.report.tornTail).toMatchObject({ kind: 'torn-tail', file: segment, offset: lastRecordOffset, index: 8, bytesTruncated: cut - lastRecordOffset });
      // The cut is made durable on disk, and the log keeps working from there.
      expect((await stat(segment)).size).toBe(lastRecordOffset);
      expect((await opened.wal.append(makeEntries(8, 8, 1, 50))).ok).toBe(true);
      await opened.wal.close();
      const again = await openWal(dir);
      expect(again.entries.at(-1)?.data[0]).toBe((8 + 50) % 251);
      expect(again.report.tornTail).toBeNull();
      await again.wal.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('treats a CRC-failing last record with nothing valid after it as a torn tail', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 8));
    const [, lastSegment] = await segmentFiles(dir);
    if (lastSegment === undefined) throw new Error('expected two segments');
    await flipBit(lastSegment, recordOffset(2) + 40);
    const opened = await openWal(dir);
    expect(opened.report.tornTail).toMatchObject({ kind: 'torn-tail', offset: recordOffset(2), index: 8 });
    expect(opened.entries).toHaveLength(7);
    await opened.wal.close();
  });

  it('refuses a bit flip in the middle of the last segment, naming file, offset and index', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 9));
    const [, lastSegment] = await segmentFiles(dir);
    if (lastSegment === undefined) throw new Error('expected two segments');
    const before = await readFile(lastSegment);
    await flipBit(lastSegment, recordOffset(1) + 45, 3);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'corruption', file: lastSegment, offset: recordOffset(1), index: 7 });
    expect(issue.reason).toMatch(/CRC32C mismatch.*valid records after it/);
    // Nothing was truncated: the damaged bytes and everything after them are still there.
    expect((await readFile(lastSegment)).length).toBe(before.length);
  });

  it('refuses a bit flip in a sealed segment, even in its last record', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 9));
    const [firstSegment] = await segmentFiles(dir);
    if (firstSegment === undefined) throw new Error('expected two segments');
    await flipBit(firstSegment, recordOffset(4) + 50);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'corruption', file: firstSegment, offset: recordOffset(4), index: 5 });
    expect(issue.reason).toMatch(/sealed segment/);
  });

  it('detects a valid record copied over another position as misdirected', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 9));
    const [firstSegment] = await segmentFiles(dir);
    if (firstSegment === undefined) throw new Error('expected two segments');
    const bytes = await readFile(firstSegment);
    bytes.copy(bytes, recordOffset(3), recordOffset(1), recordOffset(2));
    await writeFile(firstSegment, bytes);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'misdirected', file: firstSegment, offset: recordOffset(3), index: 4 });
    expect(issue.reason).toMatch(/holds index 2 where index 4 belongs/);
  });

  it('detects a record from another segment as misdirected even when its index fits', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 9));
    const [, lastSegment] = await segmentFiles(dir);
    if (lastSegment === undefined) throw new Error('expected two segments');
    const bytes = await readFile(lastSegment);
    const [entry] = makeEntries(7, 7);
    if (entry === undefined) throw new Error('no entry');
    encodeEntryRecord(1, entry).copy(bytes, recordOffset(1));
    await writeFile(lastSegment, bytes);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'misdirected', file: lastSegment, offset: recordOffset(1), index: 7 });
  });

  it('detects an older version of an overwritten entry as stale', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    expect((await wal.append(makeEntries(1, 3, 1))).ok).toBe(true);
    expect((await wal.append(makeEntries(4, 4, 2))).ok).toBe(true);
    await wal.close();
    const [segment] = await segmentFiles(dir);
    if (segment === undefined) throw new Error('expected a segment');
    // A lost write: entry 4 is back to what an epoch-1 leader once wrote there.
    const bytes = await readFile(segment);
    const [old4] = makeEntries(4, 4, 1);
    if (old4 === undefined) throw new Error('no entry');
    // Position 3 holds epoch 2; write an epoch-2 entry 3 before a stale epoch-1 entry 4.
    const [new3] = makeEntries(3, 3, 2);
    if (new3 === undefined) throw new Error('no entry');
    encodeEntryRecord(1, new3).copy(bytes, recordOffset(2));
    encodeEntryRecord(1, old4).copy(bytes, recordOffset(3));
    await writeFile(segment, bytes);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'stale', file: segment, offset: recordOffset(3), index: 4 });
  });

  it('detects a sealed segment whose records all pass but whose content changed (seal xxh64)', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 9));
    const [firstSegment] = await segmentFiles(dir);
    if (firstSegment === undefined) throw new Error('expected two segments');
    const bytes = await readFile(firstSegment);
    const [other2] = makeEntries(2, 2, 1, 7);
    if (other2 === undefined) throw new Error('no entry');
    encodeEntryRecord(1, other2).copy(bytes, recordOffset(1));
    await writeFile(firstSegment, bytes);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'checksum-mismatch', file: firstSegment, offset: recordOffset(5), index: 6 });
  });

  it('refuses a log with a missing middle segment as a gap', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 14));
    const [, middle, last] = await segmentFiles(dir);
    if (middle === undefined || last === undefined) throw new Error('expected three segments');
    await rm(middle);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'corruption', file: last, offset: 0, index: 6 });
    expect(issue.reason).toMatch(/gap/);
  });

  it('refuses a damaged segment header', async () => {
    const dir = await temp.make();
    await writeLog(dir, makeEntries(1, 3));
    const [segment] = await segmentFiles(dir);
    if (segment === undefined) throw new Error('expected a segment');
    await flipBit(segment, 17);
    expect(await openFailure(dir)).toMatchObject({ kind: 'corruption', file: segment, offset: 0 });
  });

  it('compaction deletes only segments whose entries are all covered', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    expect((await wal.append(makeEntries(1, 23))).ok).toBe(true);
    expect(wal.stats().segmentCount).toBe(5);
    // Segments hold 1-5, 6-10, 11-15, 16-20, 21-23: up to 12 frees exactly the first two.
    expect((await wal.compactPrefix(12)).ok).toBe(true);
    expect(wal.stats().segmentCount).toBe(3);
    expect(wal.firstIndex()).toBe(11);
    // Even a compaction past the end keeps the last segment, which says where the log continues.
    expect((await wal.compactPrefix(100)).ok).toBe(true);
    expect(wal.stats().segmentCount).toBe(1);
    await wal.close();
    const reopened = await openWal(dir);
    expect(reopened.entries.map((entry) => entry.index)).toEqual([21, 22, 23]);
    await reopened.wal.close();
  });

  it('reset empties the log and fixes where it starts again', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    expect((await wal.append(makeEntries(1, 8))).ok).toBe(true);
    expect((await wal.reset(51)).ok).toBe(true);
    expect(await segmentFiles(dir)).toEqual([]);
    await expect(wal.append(makeEntries(50, 50))).resolves.toMatchObject({ ok: true });
    await wal.close();
    const reopened = await openWal(dir);
    expect(reopened.entries.map((entry) => entry.index)).toEqual([50]);
    await reopened.wal.close();
  });

  it('refuses an append whose epoch goes backwards, so recovery never sees a stale record it wrote itself', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    expect((await wal.append(makeEntries(1, 3, 2))).ok).toBe(true);
    await expect(wal.append(makeEntries(4, 4, 1))).rejects.toThrow(/epoch 1, lower than epoch 2/);
    await wal.close();
  });

  it('keeps a bounded ring of fsync durations and reports segment bytes', async () => {
    const dir = await temp.make();
    const { wal } = await openWal(dir);
    for (let index = 1; index <= 12; index += 1) expect((await wal.append(makeEntries(index, index))).ok).toBe(true);
    const stats = wal.stats();
    expect(stats.fsyncDurationsMs.length).toBe(stats.fsyncCount);
    expect(stats.fsyncDurationMsP99).not.toBeNull();
    let bytes = 0;
    for (const file of await segmentFiles(dir)) bytes += (await stat(file)).size;
    expect(stats.segmentBytes).toBe(bytes);
    expect(dataBytes).toBe(20);
    await wal.close();
  });
});
