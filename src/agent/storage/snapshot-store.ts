import { mkdir, readdir, rm, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import type { Snapshot, SnapshotMeta } from '../consensus/engine';
import { NodeIdSchema } from '../../shared/protocol/model';
import { describeIssues } from '../../shared/protocol/result';
import { checksum, contentHash, hex, readU64, writeU64, type StorageIssue } from './codec';
import type { Disk } from './disk';

/**
 * Snapshot files, one per snapshot, named `<index>-<epoch>.snap` (16 hex
 * digits each) and written atomically. The newest durable one wins; older ones
 * are deleted only after a newer one is durable.
 *
 *   header (40 bytes): magic u32 | formatVersion u16 | reserved u16 | metaBytes u32 |
 *     reserved u32 | dataBytes u64 | xxh64 u64 (over meta then data) | crc32c u32 (over the
 *     32 bytes before it) | reserved u32
 *   meta: msgpack { index, epoch, membership }
 *   data: the state machine bytes
 */

const snapshotMagic = 0x504e5351; // "QSNP" read little-endian
const snapshotFormatVersion = 1;
export const snapshotHeaderBytes = 40;
const metaBytesMax = 64 * 1024;
/** The largest snapshot read back into memory on start. */
export const snapshotBytesMaxDefault = 1024 * 1024 * 1024;

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

const MetaSchema = z.object({
  index: z.number().int().nonnegative(),
  epoch: z.number().int().nonnegative(),
  membership: z.object({ voters: z.array(NodeIdSchema).max(64), learners: z.array(NodeIdSchema).max(64) }),
});

const snapshotNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

export function snapshotFileName(meta: Pick<SnapshotMeta, 'index' | 'epoch'>): string {
  return `${meta.index.toString(16).padStart(16, '0')}-${meta.epoch.toString(16).padStart(16, '0')}.snap`;
}

function parseSnapshotFileName(name: string): { index: number; epoch: number } | null {
  const match = snapshotNamePattern.exec(name);
  if (match === null || match[1] === undefined || match[2] === undefined) return null;
  return { index: Number.parseInt(match[1], 16), epoch: Number.parseInt(match[2], 16) };
}

export function encodeSnapshot(snapshot: Snapshot): Buffer[] {
  const meta = packr.pack({ index: snapshot.meta.index, epoch: snapshot.meta.epoch, membership: { voters: [...snapshot.meta.membership.voters], learners: [...snapshot.meta.membership.learners] } });
  const hash = contentHash(Buffer.concat([meta, snapshot.data]));
  const header = Buffer.alloc(snapshotHeaderBytes);
  header.writeUInt32LE(snapshotMagic, 0);
  header.writeUInt16LE(snapshotFormatVersion, 4);
  header.writeUInt32LE(meta.length, 8);
  writeU64(header, snapshot.data.length, 16);
  header.writeBigUInt64LE(hash, 24);
  header.writeUInt32LE(checksum(header.subarray(0, 32)), 32);
  return [header, meta, Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.length)];
}

export type SnapshotDecode = { ok: true; snapshot: Snapshot } | { ok: false; kind: StorageIssue['kind']; offset: number; reason: string };

export function decodeSnapshot(bytes: Buffer): SnapshotDecode {
  const fail = (kind: StorageIssue['kind'], offset: number, reason: string): SnapshotDecode => ({ ok: false, kind, offset, reason });
  if (bytes.length < snapshotHeaderBytes) return fail('corruption', 0, `snapshot file is ${bytes.length} bytes, shorter than its header`);
  const storedCrc = bytes.readUInt32LE(32);
  const computedCrc = checksum(bytes.subarray(0, 32));
  if (storedCrc !== computedCrc) return fail('corruption', 0, `snapshot header CRC32C mismatch (stored ${hex(storedCrc)}, computed ${hex(computedCrc)})`);
  // The last four header bytes lie outside the CRC; requiring zero keeps a flip there from going unnoticed.
  if (bytes.readUInt32LE(36) !== 0) return fail('corruption', 36, 'snapshot header reserved bytes are not zero');
  if (bytes.readUInt32LE(0) !== snapshotMagic) return fail('corruption', 0, 'snapshot has a wrong magic number');
  const version = bytes.readUInt16LE(4);
  if (version !== snapshotFormatVersion) return fail('corruption', 4, `snapshot format version ${version} is not supported`);
  const metaBytes = bytes.readUInt32LE(8);
  const dataBytes = readU64(bytes, 16);
  if (metaBytes > metaBytesMax || dataBytes === null || snapshotHeaderBytes + metaBytes + dataBytes !== bytes.length) {
    return fail('corruption', 8, `snapshot sizes (meta ${metaBytes}, data ${String(dataBytes)}) do not match the file's ${bytes.length} bytes`);
  }
  const body = bytes.subarray(snapshotHeaderBytes);
  const storedHash = bytes.readBigUInt64LE(24);
  const computedHash = contentHash(body);
  if (storedHash !== computedHash) {
    return fail('checksum-mismatch', snapshotHeaderBytes, `snapshot xxh64 mismatch (stored ${storedHash.toString(16)}, computed ${computedHash.toString(16)})`);
  }
  let decoded: unknown;
  try {
    decoded = packr.unpack(body.subarray(0, metaBytes));
  } catch (error) {
    return fail('corruption', snapshotHeaderBytes, `snapshot meta does not decode: ${error instanceof Error ? error.message : String(error)}`);
  }
  const meta = MetaSchema.safeParse(decoded);
  if (!meta.success) return fail('corruption', snapshotHeaderBytes, `snapshot meta is malformed: ${describeIssues(meta.error)}`);
  return { ok: true, snapshot: { meta: meta.data, data: Uint8Array.from(body.subarray(metaBytes)) } };
}

export type SnapshotLoad =
  | { ok: true; snapshot: Snapshot | null; path: string | null; staleFiles: readonly string[]; temporaryFilesRemoved: readonly string[] }
  | { ok: false; issue: StorageIssue };

/**
 * Finds the newest snapshot and verifies it. A damaged newest snapshot is an
 * error, not a reason to fall back to an older one: the WAL prefix the older
 * one would need may already be gone.
 */
export async function loadNewestSnapshot(dir: string, snapshotBytesMax: number): Promise<SnapshotLoad> {
  await mkdir(dir, { recursive: true });
  const names = await readdir(dir);
  const temporaryFilesRemoved: string[] = [];
  for (const name of names.filter((candidate) => candidate.endsWith('.tmp'))) {
    await rm(join(dir, name), { force: true });
    temporaryFilesRemoved.push(name);
  }
  const candidates = names
    .map((name) => ({ name, identity: parseSnapshotFileName(name) }))
    .filter((file): file is { name: string; identity: { index: number; epoch: number } } => file.identity !== null)
    .sort((a, b) => b.identity.index - a.identity.index || b.identity.epoch - a.identity.epoch);
  const newest = candidates[0];
  if (newest === undefined) return { ok: true, snapshot: null, path: null, staleFiles: [], temporaryFilesRemoved };
  const path = join(dir, newest.name);
  const size = (await stat(path)).size;
  if (size > snapshotBytesMax) {
    return { ok: false, issue: { kind: 'corruption', file: path, offset: 0, index: newest.identity.index, reason: `snapshot is ${size} bytes, more than snapshotBytesMax (${snapshotBytesMax})` } };
  }
  const checked = checkSnapshotBytes(path, newest.identity, await readFile(path));
  if (!checked.ok) return checked;
  return { ok: true, snapshot: checked.snapshot, path, staleFiles: candidates.slice(1).map((file) => join(dir, file.name)), temporaryFilesRemoved };
}

export function parseSnapshotName(name: string): { index: number; epoch: number } | null {
  return parseSnapshotFileName(name);
}

/**
 * Verifies a snapshot file's bytes against the identity its name promises:
 * CRC and xxh64 first, then the meta. An older snapshot under a newer name is
 * `stale`; any other identity mismatch is `misdirected`.
 */
export function checkSnapshotBytes(path: string, named: { index: number; epoch: number }, bytes: Buffer): { ok: true; snapshot: Snapshot } | { ok: false; issue: StorageIssue } {
  const decoded = decodeSnapshot(bytes);
  if (!decoded.ok) return { ok: false, issue: { kind: decoded.kind, file: path, offset: decoded.offset, index: named.index, reason: decoded.reason } };
  const meta = decoded.snapshot.meta;
  if (meta.index !== named.index || meta.epoch !== named.epoch) {
    const older = meta.index < named.index || (meta.index === named.index && meta.epoch < named.epoch);
    return {
      ok: false,
      issue: { kind: older ? 'stale' : 'misdirected', file: path, offset: snapshotHeaderBytes, index: named.index, reason: `snapshot meta says index ${meta.index} epoch ${meta.epoch}, the file name says index ${named.index} epoch ${named.epoch}` },
    };
  }
  return { ok: true, snapshot: decoded.snapshot };
}

/** Writes `snapshot` durably, then deletes every other snapshot file in `dir`. Returns the new file's path. */
export async function saveSnapshotFile(disk: Disk, dir: string, snapshot: Snapshot): Promise<string> {
  const path = join(dir, snapshotFileName(snapshot.meta));
  await disk.writeAtomically(dir, path, encodeSnapshot(snapshot));
  for (const name of await readdir(dir)) {
    const other = join(dir, name);
    if (other === path || parseSnapshotFileName(name) === null) continue;
    await rm(other, { force: true });
  }
  // Older snapshots are only an optimisation to delete; one directory fsync covers them all.
  await disk.syncDirectory(dir);
  return path;
}
