import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../../src/agent/consensus/engine';
import { recordOverheadBytes, segmentHeaderBytes } from '../../../src/agent/storage/codec';

/** Temp directories made by a test file; `removeAll` deletes them in `afterEach`. */
export class TempDirs {
  private readonly dirs: string[] = [];

  async make(prefix = 'quorumscope-storage-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async copy(from: string): Promise<string> {
    const dir = await this.make();
    await cp(from, dir, { recursive: true });
    return dir;
  }

  async removeAll(): Promise<void> {
    for (const dir of this.dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  }
}

export const dataBytes = 20;

/** Entries `from..to` with fixed-size data, so record offsets are easy to compute. */
export function makeEntries(from: number, to: number, epoch = 1, fill = 0): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index <= to; index += 1) {
    const data = new Uint8Array(dataBytes).fill((index + fill) % 251);
    entries.push({ index, epoch, kind: index % 7 === 0 ? 'noop' : 'normal', data });
  }
  return entries;
}

export const recordBytes = recordOverheadBytes + dataBytes;

/** Offset of the `position`-th record (0-based) in a segment whose records all have `dataBytes` of data. */
export function recordOffset(position: number): number {
  return segmentHeaderBytes + position * recordBytes;
}

export async function segmentFiles(walDir: string): Promise<string[]> {
  return (await readdir(walDir)).filter((name) => name.endsWith('.wal')).sort().map((name) => join(walDir, name));
}

export async function flipBit(path: string, offset: number, bit = 0): Promise<void> {
  const bytes = await readFile(path);
  const value = bytes[offset];
  if (value === undefined) throw new RangeError(`offset ${offset} is past the end of ${path}`);
  bytes[offset] = value ^ (1 << bit);
  await writeFile(path, bytes);
}

export function plain(entries: readonly Entry[]): { index: number; epoch: number; kind: string; data: number[] }[] {
  return entries.map((entry) => ({ index: entry.index, epoch: entry.epoch, kind: entry.kind, data: [...entry.data] }));
}
