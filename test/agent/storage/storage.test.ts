import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../../src/agent/consensus/engine';
import { Disk } from '../../../src/agent/storage/disk';
import { encodeHardState } from '../../../src/agent/storage/hard-state';
import { saveSnapshotFile } from '../../../src/agent/storage/snapshot-store';
import { Storage, type StorageOpened, type StorageOptions } from '../../../src/agent/storage/storage';
import type { StorageIssue } from '../../../src/agent/storage/codec';
import { TempDirs, flipBit, makeEntries, plain, recordBytes, segmentFiles } from './helpers';

const temp = new TempDirs();
afterEach(() => temp.removeAll());

const options: StorageOptions = { walLimits: { segmentBytesMax: 32 + 5 * recordBytes + 48 } };

async function openStorage(dir: string): Promise<StorageOpened> {
  const opened = await Storage.open(dir, options);
  if (!opened.ok) throw new Error(opened.error.message);
  return opened.data;
}

async function openFailure(dir: string): Promise<StorageIssue> {
  const opened = await Storage.open(dir, options);
  if (opened.ok) {
    await opened.data.storage.close();
    throw new Error('expected storage to refuse to open');
  }
  if (opened.issue === null) throw new Error(`expected a classified issue, got ${opened.error.message}`);
  return opened.issue;
}

function snapshotAt(index: number, epoch: number, fill = 9): Snapshot {
  return { meta: { index, epoch, membership: { voters: ['n1', 'n2', 'n3'], learners: [] } }, data: new Uint8Array(300).fill(fill) };
}

describe('Storage', () => {
  it('restores nothing on a fresh directory', async () => {
    const { storage, restored } = await openStorage(await temp.make());
    expect(restored).toEqual({ hardState: null, snapshot: null, entries: [] });
    await storage.close();
  });

  it('restores the hard state and entries that persist made durable', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: { term: 1, vote: 'n2', commit: 0 }, entries: makeEntries(1, 7), snapshot: null })).ok).toBe(true);
    expect((await storage.persist({ hardState: { term: 2, vote: null, commit: 5 }, entries: makeEntries(5, 8, 2), snapshot: null })).ok).toBe(true);
    await storage.close();
    const { storage: reopened, restored } = await openStorage(dir);
    expect(restored.hardState).toEqual({ term: 2, vote: null, commit: 5 });
    expect(plain(restored.entries)).toEqual(plain([...makeEntries(1, 4), ...makeEntries(5, 8, 2)]));
    await reopened.close();
  });

  it('ignores and removes a leftover hard state temp file from an interrupted write', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: { term: 3, vote: 'n1' }, entries: [], snapshot: null })).ok).toBe(true);
    await storage.close();
    // A crash after writing the temp file but before the rename: the new state never took effect.
    await writeFile(join(dir, 'hardstate.tmp'), encodeHardState({ term: 4, vote: 'n3' }).subarray(0, 10));
    const { storage: reopened, restored, report } = await openStorage(dir);
    expect(restored.hardState).toEqual({ term: 3, vote: 'n1' });
    expect(report.temporaryFilesRemoved).toContain('hardstate.tmp');
    expect(await readdir(dir)).not.toContain('hardstate.tmp');
    await reopened.close();
  });

  it('refuses a damaged hard state file', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: { term: 3, vote: 'n1' }, entries: [], snapshot: null })).ok).toBe(true);
    await storage.close();
    // Byte 24 is the value of `term`: without the CRC this flip would silently restore term 2.
    await flipBit(join(dir, 'hardstate'), 24);
    const issue = await openFailure(dir);
    expect(issue).toMatchObject({ kind: 'corruption', file: join(dir, 'hardstate'), offset: 16, index: null });
    expect(issue.reason).toMatch(/CRC32C mismatch/);
  });

  it('a local snapshot compacts the segments it covers and is restored with the entries after it', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: { term: 1 }, entries: makeEntries(1, 14), snapshot: null })).ok).toBe(true);
    expect(storage.stats().wal.segmentCount).toBe(3);
    expect((await storage.saveSnapshot(snapshotAt(11, 1))).ok).toBe(true);
    expect(storage.stats().wal.segmentCount).toBe(1);
    await storage.close();
    const { storage: reopened, restored } = await openStorage(dir);
    expect(restored.snapshot?.meta.index).toBe(11);
    expect(restored.snapshot?.data).toEqual(new Uint8Array(300).fill(9));
    expect(restored.entries.map((entry) => entry.index)).toEqual([12, 13, 14]);
    await reopened.close();
  });

  it('keeps only the newest snapshot file once it is durable', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: null, entries: makeEntries(1, 14), snapshot: null })).ok).toBe(true);
    expect((await storage.saveSnapshot(snapshotAt(6, 1))).ok).toBe(true);
    expect((await storage.saveSnapshot(snapshotAt(12, 1))).ok).toBe(true);
    expect(await readdir(join(dir, 'snapshots'))).toEqual(['000000000000000c-0000000000000001.snap']);
    await storage.close();
  });

  it('detects a snapshot whose data no longer matches its xxh64', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: null, entries: makeEntries(1, 8), snapshot: null })).ok).toBe(true);
    expect((await storage.saveSnapshot(snapshotAt(8, 1))).ok).toBe(true);
    await storage.close();
    const [name] = await readdir(join(dir, 'snapshots'));
    const file = join(dir, 'snapshots', name ?? '');
    await flipBit(file, (await readFile(file)).length - 100, 5);
    expect(await openFailure(dir)).toMatchObject({ kind: 'checksum-mismatch', file, offset: 40, index: 8 });
  });

  it('a snapshot from the leader that the log disagrees with replaces the whole log', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: null, entries: makeEntries(1, 8), snapshot: null })).ok).toBe(true);
    expect((await storage.persist({ hardState: { term: 5, commit: 20 }, entries: makeEntries(21, 22, 5), snapshot: snapshotAt(20, 4) })).ok).toBe(true);
    expect(storage.lastIndex()).toBe(22);
    await storage.close();
    const { storage: reopened, restored, report } = await openStorage(dir);
    expect(report.walResetToIndex).toBeNull();
    expect(restored.snapshot?.meta.index).toBe(20);
    expect(restored.entries.map((entry) => entry.index)).toEqual([21, 22]);
    expect((await segmentFiles(join(dir, 'wal'))).length).toBe(1);
    await reopened.close();
  });

  it('after a crash between installing a snapshot and resetting the log, open resets the log (Raft §7)', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    expect((await storage.persist({ hardState: null, entries: makeEntries(1, 12), snapshot: null })).ok).toBe(true);
    await storage.close();
    // The snapshot is durable but the log still holds a conflicting entry 10 (epoch 1, not 3).
    await saveSnapshotFile(new Disk(), join(dir, 'snapshots'), snapshotAt(10, 3));
    const { storage: reopened, restored, report } = await openStorage(dir);
    expect(report.walResetToIndex).toBe(11);
    expect(restored.entries).toEqual([]);
    expect((await reopened.persist({ hardState: null, entries: makeEntries(11, 11, 3), snapshot: null })).ok).toBe(true);
    await reopened.close();
  });

  it('the slow-disk drill delays every fsync and shows in the p99', async () => {
    const dir = await temp.make();
    const { storage } = await openStorage(dir);
    storage.setFsyncDelayMs(40);
    const startMs = performance.now();
    expect((await storage.persist({ hardState: { term: 1 }, entries: makeEntries(1, 1), snapshot: null })).ok).toBe(true);
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(40);
    expect(storage.stats().fsyncDurationMsP99).toBeGreaterThanOrEqual(40);
    storage.setFsyncDelayMs(0);
    await storage.close();
  });

  it('refuses to persist after close', async () => {
    const { storage } = await openStorage(await temp.make());
    await storage.close();
    expect(await storage.persist({ hardState: { term: 1 }, entries: [], snapshot: null })).toMatchObject({ ok: false, error: { code: 'storage_closed' } });
  });
});
