import { crc32c } from '@node-rs/crc32';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { describeIssues } from '../../shared/protocol/result';

/**
 * The manifest: one entry per sealed WAL segment with its xxh64 over the whole
 * file, written when the segment seals. It is what a rebuilt segment (from
 * parity or from a peer's entries) must hash to before it replaces the damaged
 * one, and what the scrubber checks beyond the record CRCs.
 *
 *   magic u32 "QMAN" | formatVersion u16 | reserved u16 | bodyBytes u32 | crc32c u32 (body) | body
 *   body: msgpack { segments: [{ segment, firstIndex, lastIndex, bytes, hash }] }
 * Replaced atomically (temp file, fsync, rename, directory fsync).
 */

export const manifestFileName = 'manifest';
const manifestMagic = 0x4e414d51; // "QMAN" read little-endian
const manifestFormatVersion = 1;
const manifestHeaderBytes = 16;
/** More sealed segments than any data directory keeps between compactions. */
export const manifestSegmentsMax = 1_000_000;

export interface ManifestEntry {
  readonly segment: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly bytes: number;
  /** xxh64 of the whole segment file, 16 hex digits. */
  readonly hash: string;
}

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

const BodySchema = z.strictObject({
  segments: z
    .array(
      z.strictObject({
        segment: z.number().int().nonnegative(),
        firstIndex: z.number().int().nonnegative(),
        lastIndex: z.number().int().min(-1),
        bytes: z.number().int().nonnegative(),
        hash: z.string().regex(/^[0-9a-f]{16}$/),
      }),
    )
    .max(manifestSegmentsMax),
});

export function hashHex(hash: bigint): string {
  return hash.toString(16).padStart(16, '0');
}

export function encodeManifest(entries: Iterable<ManifestEntry>): Buffer {
  const body = packr.pack({ segments: [...entries].map((entry) => ({ ...entry })) });
  const header = Buffer.alloc(manifestHeaderBytes);
  header.writeUInt32LE(manifestMagic, 0);
  header.writeUInt16LE(manifestFormatVersion, 4);
  header.writeUInt32LE(body.length, 8);
  header.writeUInt32LE(crc32c(body) >>> 0, 12);
  return Buffer.concat([header, body]);
}

export function decodeManifest(bytes: Buffer): { ok: true; entries: ManifestEntry[] } | { ok: false; reason: string } {
  if (bytes.length < manifestHeaderBytes) return { ok: false, reason: 'manifest is shorter than its header' };
  if (bytes.readUInt32LE(0) !== manifestMagic || bytes.readUInt16LE(4) !== manifestFormatVersion || bytes.readUInt16LE(6) !== 0) return { ok: false, reason: 'manifest has a wrong magic number or version' };
  const bodyBytes = bytes.readUInt32LE(8);
  if (bodyBytes !== bytes.length - manifestHeaderBytes) return { ok: false, reason: `manifest body claims ${bodyBytes} bytes, the file holds ${bytes.length - manifestHeaderBytes}` };
  const body = bytes.subarray(manifestHeaderBytes);
  if (crc32c(body) >>> 0 !== bytes.readUInt32LE(12)) return { ok: false, reason: 'manifest CRC32C mismatch' };
  let decoded: unknown;
  try {
    decoded = packr.unpack(body);
  } catch (error) {
    return { ok: false, reason: `manifest does not decode: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = BodySchema.safeParse(decoded);
  if (!parsed.success) return { ok: false, reason: `manifest is malformed: ${describeIssues(parsed.error)}` };
  return { ok: true, entries: parsed.data.segments };
}
