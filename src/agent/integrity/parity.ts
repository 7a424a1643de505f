import { crc32c } from '@node-rs/crc32';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { describeIssues } from '../../shared/protocol/result';

/**
 * XOR parity over a group of sealed segments, RAID-5 style (see README.md).
 *
 * Every member is cut into `blockBytes` blocks; stripe `b` is block `b` of every
 * member (a member shorter than the stripe counts as zeros). The parity block of
 * the stripe is the XOR of its member blocks, so one damaged block per stripe is
 * the XOR of the parity block and the other members' blocks. Each member block
 * and each parity block carries its own CRC32C: the CRCs say which block is
 * damaged, and a rebuilt block is accepted only if it matches its CRC.
 *
 * Parity file:
 *   magic u32 "QPAR" | formatVersion u16 | reserved u16 | metaBytes u32 | metaCrc32c u32 | meta | parity
 *   meta: msgpack { group, blockBytes, members: [{ segment, bytes, hash, blockCrcs }], parityCrcs }
 * Everything here is pure; the engine does the file I/O.
 */

export const parityBlockBytesDefault = 4096;
export const paritySegmentsPerGroupDefault = 4;
const parityMagic = 0x52415051; // "QPAR" read little-endian
const parityFormatVersion = 1;
const parityHeaderBytes = 16;
/** A parity file's meta lists a few thousand CRCs; anything far above is damage. */
const parityMetaBytesMax = 16 * 1024 * 1024;
const parityMembersMax = 64;

export interface ParityMember {
  readonly segment: number;
  readonly bytes: number;
  /** xxh64 of the whole member file, hex. */
  readonly hash: string;
  readonly blockCrcs: readonly number[];
}

export interface ParityGroup {
  readonly group: number;
  readonly blockBytes: number;
  readonly members: readonly ParityMember[];
  readonly parity: Buffer;
  readonly parityCrcs: readonly number[];
}

export function blockCount(bytes: number, blockBytes: number): number {
  return Math.ceil(bytes / blockBytes);
}

export function blockOf(bytes: Buffer, block: number, blockBytes: number): Buffer {
  return bytes.subarray(block * blockBytes, Math.min(bytes.length, (block + 1) * blockBytes));
}

export function blockCrcs(bytes: Buffer, blockBytes: number): number[] {
  const crcs: number[] = [];
  for (let block = 0; block < blockCount(bytes.length, blockBytes); block += 1) crcs.push(crc32c(blockOf(bytes, block, blockBytes)) >>> 0);
  return crcs;
}

/** `target ^= source` over source's length; target must be at least as long. */
export function xorInto(target: Uint8Array, source: Uint8Array): void {
  if (target.length < source.length) throw new RangeError(`xor target of ${target.length} bytes is shorter than the source's ${source.length}`);
  // Four bytes at a time when both views are aligned (block-sized buffers always are): the byte loop is the slow part of a rebuild.
  let done = 0;
  if (target.byteOffset % 4 === 0 && source.byteOffset % 4 === 0) {
    const words = Math.floor(source.length / 4);
    const targetWords = new Uint32Array(target.buffer, target.byteOffset, words);
    const sourceWords = new Uint32Array(source.buffer, source.byteOffset, words);
    for (let word = 0; word < words; word += 1) targetWords[word] = (targetWords[word] ?? 0) ^ (sourceWords[word] ?? 0);
    done = words * 4;
  }
  for (let offset = done; offset < source.length; offset += 1) target[offset] = (target[offset] ?? 0) ^ (source[offset] ?? 0);
}

/** A parity buffer of `blocks` blocks, zero filled. */
function emptyParity(blocks: number, blockBytes: number): Buffer {
  return Buffer.alloc(blocks * blockBytes);
}

/** The parity of `members`, computed from their bytes (the engine's recompute after a member leaves the group). */
export function computeParity(group: number, blockBytes: number, members: readonly { segment: number; bytes: Buffer; hash: string }[]): ParityGroup {
  const blocks = Math.max(0, ...members.map((member) => blockCount(member.bytes.length, blockBytes)));
  const parity = emptyParity(blocks, blockBytes);
  for (const member of members) xorInto(parity, member.bytes);
  return {
    group,
    blockBytes,
    members: members.map((member) => ({ segment: member.segment, bytes: member.bytes.length, hash: member.hash, blockCrcs: blockCrcs(member.bytes, blockBytes) })),
    parity,
    parityCrcs: blockCrcs(parity, blockBytes),
  };
}

/** The group's parity with one more member XORed in: the cheap path taken on every seal. */
export function addMember(existing: ParityGroup | null, group: number, blockBytes: number, member: { segment: number; bytes: Buffer; hash: string }): ParityGroup {
  const previous = existing?.members.filter((candidate) => candidate.segment !== member.segment) ?? [];
  if (existing !== null && previous.length !== existing.members.length) throw new RangeError(`segment ${member.segment} is already in parity group ${group}`);
  const blocks = Math.max(existing === null ? 0 : existing.parity.length / blockBytes, blockCount(member.bytes.length, blockBytes));
  const parity = emptyParity(blocks, blockBytes);
  if (existing !== null) existing.parity.copy(parity);
  xorInto(parity, member.bytes);
  return {
    group,
    blockBytes,
    members: [...previous, { segment: member.segment, bytes: member.bytes.length, hash: member.hash, blockCrcs: blockCrcs(member.bytes, blockBytes) }],
    parity,
    parityCrcs: blockCrcs(parity, blockBytes),
  };
}

export type RebuildOutcome =
  | { readonly ok: true; readonly bytes: Buffer; readonly blocksRebuilt: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Rebuilds member `segment` from the parity and the other members' current
 * bytes. Blocks whose CRC still matches are kept; each other block is the XOR
 * of the parity block and the other members' blocks, and is accepted only when
 * the parity block and every other member block pass their CRCs (two damaged
 * blocks in one stripe cannot be told apart from one) and the result matches
 * the damaged block's recorded CRC.
 */
export function rebuildMember(group: ParityGroup, segment: number, damaged: Buffer, others: ReadonlyMap<number, Buffer>): RebuildOutcome {
  const member = group.members.find((candidate) => candidate.segment === segment);
  if (member === undefined) return { ok: false, reason: `segment ${segment} is not in parity group ${group.group}` };
  const { blockBytes } = group;
  const rebuilt = Buffer.alloc(member.bytes);
  damaged.copy(rebuilt, 0, 0, Math.min(damaged.length, member.bytes));
  let blocksRebuilt = 0;
  for (let block = 0; block < member.blockCrcs.length; block += 1) {
    const current = blockOf(rebuilt, block, blockBytes);
    const intact = block * blockBytes + current.length <= damaged.length && crc32c(current) >>> 0 === member.blockCrcs[block];
    if (intact) continue;
    const parityBlock = blockOf(group.parity, block, blockBytes);
    if (crc32c(parityBlock) >>> 0 !== group.parityCrcs[block]) return { ok: false, reason: `parity block ${block} of group ${group.group} is damaged too` };
    const candidate = Buffer.from(parityBlock);
    for (const other of group.members) {
      if (other.segment === segment || block >= other.blockCrcs.length) continue;
      const otherBytes = others.get(other.segment);
      if (otherBytes === undefined) return { ok: false, reason: `segment ${other.segment} of parity group ${group.group} is missing` };
      const otherBlock = blockOf(otherBytes, block, blockBytes);
      if (crc32c(otherBlock) >>> 0 !== other.blockCrcs[block]) return { ok: false, reason: `block ${block} is damaged in segment ${other.segment} too: two damaged blocks in one stripe` };
      xorInto(candidate, otherBlock);
    }
    const restored = candidate.subarray(0, current.length);
    if (crc32c(restored) >>> 0 !== member.blockCrcs[block]) return { ok: false, reason: `rebuilt block ${block} does not match its CRC32C` };
    restored.copy(rebuilt, block * blockBytes);
    blocksRebuilt += 1;
  }
  return { ok: true, bytes: rebuilt, blocksRebuilt };
}

// ---- file format ----

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

const crcList = z.custom<Uint8Array>((value) => value instanceof Uint8Array && value.length % 4 === 0, 'expected a CRC list');
const MetaSchema = z.strictObject({
  group: z.number().int().nonnegative(),
  blockBytes: z.number().int().min(512).max(1024 * 1024),
  members: z
    .array(z.strictObject({ segment: z.number().int().nonnegative(), bytes: z.number().int().nonnegative(), hash: z.string().max(16), blockCrcs: crcList }))
    .max(parityMembersMax),
  parityCrcs: crcList,
});

function packCrcs(crcs: readonly number[]): Buffer {
  const buffer = Buffer.alloc(crcs.length * 4);
  crcs.forEach((crc, position) => buffer.writeUInt32LE(crc, position * 4));
  return buffer;
}

function unpackCrcs(bytes: Uint8Array): number[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return Array.from({ length: bytes.length / 4 }, (_, position) => buffer.readUInt32LE(position * 4));
}

export function encodeParity(group: ParityGroup): Buffer[] {
  const meta = packr.pack({
    group: group.group,
    blockBytes: group.blockBytes,
    members: group.members.map((member) => ({ segment: member.segment, bytes: member.bytes, hash: member.hash, blockCrcs: packCrcs(member.blockCrcs) })),
    parityCrcs: packCrcs(group.parityCrcs),
  });
  const header = Buffer.alloc(parityHeaderBytes);
  header.writeUInt32LE(parityMagic, 0);
  header.writeUInt16LE(parityFormatVersion, 4);
  header.writeUInt32LE(meta.length, 8);
  header.writeUInt32LE(crc32c(meta) >>> 0, 12);
  return [header, meta, group.parity];
}

/**
 * Decodes a parity file. Its meta is checked here; the parity blocks are
 * checked one by one when used, so a damaged parity block costs only its stripe.
 */
export function decodeParity(bytes: Buffer): { ok: true; group: ParityGroup } | { ok: false; reason: string } {
  if (bytes.length < parityHeaderBytes) return { ok: false, reason: 'parity file is shorter than its header' };
  if (bytes.readUInt32LE(0) !== parityMagic || bytes.readUInt16LE(4) !== parityFormatVersion || bytes.readUInt16LE(6) !== 0) return { ok: false, reason: 'parity file has a wrong magic number or version' };
  const metaBytes = bytes.readUInt32LE(8);
  if (metaBytes > parityMetaBytesMax || parityHeaderBytes + metaBytes > bytes.length) return { ok: false, reason: `parity meta of ${metaBytes} bytes does not fit the file` };
  const meta = bytes.subarray(parityHeaderBytes, parityHeaderBytes + metaBytes);
  if (crc32c(meta) >>> 0 !== bytes.readUInt32LE(12)) return { ok: false, reason: 'parity meta CRC32C mismatch' };
  let decoded: unknown;
  try {
    decoded = packr.unpack(meta);
  } catch (error) {
    return { ok: false, reason: `parity meta does not decode: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = MetaSchema.safeParse(decoded);
  if (!parsed.success) return { ok: false, reason: `parity meta is malformed: ${describeIssues(parsed.error)}` };
  const parity = bytes.subarray(parityHeaderBytes + metaBytes);
  const parityCrcs = unpackCrcs(parsed.data.parityCrcs);
  if (parity.length !== parityCrcs.length * parsed.data.blockBytes) return { ok: false, reason: `parity holds ${parity.length} bytes for ${parityCrcs.length} blocks` };
  return {
    ok: true,
    group: {
      group: parsed.data.group,
      blockBytes: parsed.data.blockBytes,
      members: parsed.data.members.map((member) => ({ segment: member.segment, bytes: member.bytes, hash: member.hash, blockCrcs: unpackCrcs(member.blockCrcs) })),
      parity: Buffer.from(parity),
      parityCrcs,
    },
  };
}

export function parityFileName(group: number): string {
  return `${group.toString(16).padStart(16, '0')}.par`;
}
