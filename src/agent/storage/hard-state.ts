import { readFile, rm } from 'node:fs/promises';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import type { HardState } from '../consensus/engine';
import { describeIssues, ok } from '../../shared/protocol/result';
import { checksum, hex, type StorageIssue } from './codec';
import type { Disk } from './disk';

/**
 * The hard state file: one small record replaced atomically (temp file, fsync,
 * rename, directory fsync), so a crash leaves the old or the new state, never
 * a mix.
 *
 *   magic u32 | formatVersion u16 | reserved u16 | bodyBytes u32 | crc32c u32 (over the body) | body
 * The body is msgpack of the engine's opaque record.
 */

export const hardStateFileName = 'hardstate';
const hardStateMagic = 0x54534851; // "QHST" read little-endian
const hardStateFormatVersion = 1;
const hardStateHeaderBytes = 16;
/** An engine's hard state is a handful of numbers; anything near this is damage. */
export const hardStateBytesMax = 64 * 1024;
const hardStateFieldsMax = 64;

// A fixed msgpack configuration: plain maps as objects, no records, no structured clone.
const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

const HardStateSchema = z
  .record(z.string().max(64), z.union([z.number(), z.string().max(4096), z.null()]))
  .refine((record) => Object.keys(record).length <= hardStateFieldsMax, `at most ${hardStateFieldsMax} fields`);

export function encodeHardState(state: HardState): Buffer {
  const body = packr.pack({ ...state });
  if (body.length > hardStateBytesMax - hardStateHeaderBytes) throw new RangeError(`hard state of ${body.length} bytes exceeds hardStateBytesMax`);
  const header = Buffer.alloc(hardStateHeaderBytes);
  header.writeUInt32LE(hardStateMagic, 0);
  header.writeUInt16LE(hardStateFormatVersion, 4);
  header.writeUInt32LE(body.length, 8);
  header.writeUInt32LE(checksum(body), 12);
  return Buffer.concat([header, body]);
}

export type HardStateDecode = { ok: true; state: HardState } | { ok: false; offset: number; reason: string };

export function decodeHardState(bytes: Buffer): HardStateDecode {
  if (bytes.length < hardStateHeaderBytes) return { ok: false, offset: 0, reason: `hard state file is ${bytes.length} bytes, shorter than its header` };
  if (bytes.readUInt32LE(0) !== hardStateMagic) return { ok: false, offset: 0, reason: 'hard state file has a wrong magic number' };
  const version = bytes.readUInt16LE(4);
  if (version !== hardStateFormatVersion) return { ok: false, offset: 4, reason: `hard state format version ${version} is not supported` };
  const bodyBytes = bytes.readUInt32LE(8);
  if (bodyBytes !== bytes.length - hardStateHeaderBytes) {
    return { ok: false, offset: 8, reason: `hard state body claims ${bodyBytes} bytes, the file holds ${bytes.length - hardStateHeaderBytes}` };
  }
  const body = bytes.subarray(hardStateHeaderBytes);
  const stored = bytes.readUInt32LE(12);
  const computed = checksum(body);
  if (stored !== computed) return { ok: false, offset: hardStateHeaderBytes, reason: `hard state CRC32C mismatch (stored ${hex(stored)}, computed ${hex(computed)})` };
  let decoded: unknown;
  try {
    decoded = packr.unpack(body);
  } catch (error) {
    return { ok: false, offset: hardStateHeaderBytes, reason: `hard state does not decode: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = HardStateSchema.safeParse(decoded);
  if (!parsed.success) return { ok: false, offset: hardStateHeaderBytes, reason: `hard state is malformed: ${describeIssues(parsed.error)}` };
  return { ok: true, state: parsed.data };
}

export type HardStateRead = { ok: true; data: HardState | null; temporaryFileRemoved: boolean } | { ok: false; issue: StorageIssue };

/** Reads the hard state; a leftover temp file is an interrupted write that never took effect, so it is deleted. */
export async function readHardState(path: string): Promise<HardStateRead> {
  const temporaryFileRemoved = await removeIfPresent(`${path}.tmp`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (isMissing(error)) return { ok: true, data: null, temporaryFileRemoved };
    throw error;
  }
  if (bytes.length > hardStateBytesMax) {
    return { ok: false, issue: { kind: 'corruption', file: path, offset: 0, index: null, reason: `hard state file is ${bytes.length} bytes, more than ${hardStateBytesMax}` } };
  }
  const decoded = decodeHardState(bytes);
  if (!decoded.ok) return { ok: false, issue: { kind: 'corruption', file: path, offset: decoded.offset, index: null, reason: decoded.reason } };
  return { ...ok(decoded.state), temporaryFileRemoved };
}

export async function writeHardState(disk: Disk, dir: string, path: string, state: HardState): Promise<void> {
  await disk.writeAtomically(dir, path, [encodeHardState(state)]);
}

async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await rm(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

export function isMissing(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}
