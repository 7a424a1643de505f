import { crc32c } from '@node-rs/crc32';
import { Packr, Unpackr } from 'msgpackr';
import { z } from 'zod';
import { ClusterIdSchema, NodeIdSchema } from '../../shared/protocol/model';
import { describeIssues } from '../../shared/protocol/result';

/**
 * The peer wire format. A frame is
 *
 *   bodyLength u32 | crc32c u32 (over the body) | body
 *   body: frameType u8 | msgpack value
 *
 * little-endian. A connection starts with a `hello` frame each way; then the
 * dialling side sends `message` frames; either side may send one `close` frame
 * with a reason before it hangs up.
 *
 * The msgpack value is checked by `checkMsgpack` before it is decoded: msgpackr
 * always decodes its extension types (Set, Error, RegExp, object references
 * that build cycles, typed arrays), whatever the Unpackr options say, so an
 * untrusted peer could otherwise hand us objects no validator expects.
 */

export const peerProtocolVersion = 1;
export const frameHeaderBytes = 8;
/** How deep arrays and maps may nest in a frame; engine messages need a handful of levels. */
export const frameNestingMax = 32;

export const FrameType = { hello: 1, message: 2, close: 3 } as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export const HelloSchema = z.object({
  clusterId: ClusterIdSchema,
  from: NodeIdSchema,
  protocolVersion: z.number().int().nonnegative(),
  /** The cluster's shared peer secret, when it has one: proves the speaker is a member. */
  token: z.string().min(1).max(512).optional(),
});
export type Hello = z.infer<typeof HelloSchema>;

const CloseSchema = z.object({ reason: z.string().max(1024) });

// Fixed configurations, never changed at runtime: no records, no structured clone, no extra types.
const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, encodeUndefinedAsNil: true, useBigIntExtension: false });
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number', copyBuffers: true });

export function encodeFrame(type: FrameTypeCode, value: unknown): Buffer {
  const payload = packr.pack(value);
  const frame = Buffer.allocUnsafe(frameHeaderBytes + 1 + payload.length);
  frame.writeUInt32LE(1 + payload.length, 0);
  frame.writeUInt8(type, frameHeaderBytes);
  payload.copy(frame, frameHeaderBytes + 1);
  frame.writeUInt32LE(crc32c(frame.subarray(frameHeaderBytes)) >>> 0, 4);
  return frame;
}

export function encodeHello(hello: Hello): Buffer {
  return encodeFrame(FrameType.hello, hello);
}

export function encodeClose(reason: string): Buffer {
  return encodeFrame(FrameType.close, { reason: reason.slice(0, 1024) });
}

export type DecodedFrame =
  | { readonly type: 'hello'; readonly hello: Hello }
  | { readonly type: 'message'; readonly value: unknown }
  | { readonly type: 'close'; readonly reason: string };

export type FrameDecode = { ok: true; frame: DecodedFrame } | { ok: false; reason: string };

/** Decodes a frame body whose CRC has already been checked by `FrameReader`. */
export function decodeFrameBody(body: Buffer): FrameDecode {
  const type = body[0];
  const payload = body.subarray(1);
  const structure = checkMsgpack(payload, frameNestingMax);
  if (structure !== null) return { ok: false, reason: `frame payload rejected: ${structure}` };
  let value: unknown;
  try {
    value = unpackr.unpack(payload);
  } catch (error) {
    return { ok: false, reason: `frame payload does not decode: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (type === FrameType.message) return { ok: true, frame: { type: 'message', value } };
  if (type === FrameType.hello) {
    const hello = HelloSchema.safeParse(value);
    if (!hello.success) return { ok: false, reason: `invalid hello: ${describeIssues(hello.error, 'hello')}` };
    return { ok: true, frame: { type: 'hello', hello: hello.data } };
  }
  if (type === FrameType.close) {
    const close = CloseSchema.safeParse(value);
    if (!close.success) return { ok: false, reason: `invalid close frame: ${describeIssues(close.error, 'close')}` };
    return { ok: true, frame: { type: 'close', reason: close.data.reason } };
  }
  return { ok: false, reason: `unknown frame type ${String(type)}` };
}

export type ReaderOutput = { ok: true; bodies: Buffer[] } | { ok: false; reason: string };

/**
 * Splits a byte stream into CRC-checked frame bodies. It holds at most one
 * frame (bounded by `frameBytesMax`) plus the chunk that completed it, and
 * concatenates chunks once per frame, not once per chunk.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private bufferedBytesTotal = 0;

  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): ReaderOutput {
    this.chunks.push(chunk);
    this.bufferedBytesTotal += chunk.length;
    const bodies: Buffer[] = [];
    for (;;) {
      if (this.bufferedBytesTotal < frameHeaderBytes) return { ok: true, bodies };
      const header = this.peek(frameHeaderBytes);
      const bodyBytes = header.readUInt32LE(0);
      if (bodyBytes > this.frameBytesMax) return { ok: false, reason: `frame length ${bodyBytes} exceeds frameBytesMax ${this.frameBytesMax}` };
      if (bodyBytes < 2) return { ok: false, reason: `frame length ${bodyBytes} is too short for a type and a value` };
      if (this.bufferedBytesTotal < frameHeaderBytes + bodyBytes) return { ok: true, bodies };
      const frame = this.take(frameHeaderBytes + bodyBytes);
      const body = frame.subarray(frameHeaderBytes);
      const stored = frame.readUInt32LE(4);
      const computed = crc32c(body) >>> 0;
      if (stored !== computed) return { ok: false, reason: `frame CRC32C mismatch (stored ${stored.toString(16)}, computed ${computed.toString(16)})` };
      bodies.push(body);
    }
  }

  /** Bytes of an incomplete frame held so far. */
  bufferedBytes(): number {
    return this.bufferedBytesTotal;
  }

  private peek(bytes: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= bytes) return first;
    const merged = Buffer.concat(this.chunks);
    this.chunks = [merged];
    return merged;
  }

  private take(bytes: number): Buffer {
    const merged = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const frame = Buffer.from(merged.subarray(0, bytes));
    const rest = merged.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.bufferedBytesTotal = rest.length;
    return frame;
  }
}

/**
 * Walks one msgpack value without building it and returns why it is refused,
 * or null. Refused: extension types, non-string map keys, nesting deeper than
 * `nestingMax`, declared lengths that the remaining bytes cannot hold (so no
 * length field can make the decoder allocate more than the frame), trailing bytes.
 */
export function checkMsgpack(bytes: Uint8Array, nestingMax: number): string | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  // Each level: how many values are still due, and whether it is a map (whose even values are keys).
  const stack: { remaining: number; map: boolean; position: number }[] = [];
  let values = 1;
  const need = (count: number): boolean => offset + count <= bytes.length;
  while (values > 0 || stack.length > 0) {
    const level = stack.at(-1);
    if (level !== undefined && level.remaining === 0) {
      stack.pop();
      continue;
    }
    if (level === undefined && values === 0) break;
    const isKey = level !== undefined && level.map && level.position % 2 === 0;
    if (level !== undefined) {
      level.remaining -= 1;
      level.position += 1;
    } else {
      values -= 1;
    }
    if (!need(1)) return `truncated value at byte ${offset}`;
    const token = bytes[offset] ?? 0;
    offset += 1;
    let length = 0;
    let container: 'array' | 'map' | null = null;
    let isString = false;
    if (token <= 0x7f || token >= 0xe0) {
      length = 0;
    } else if (token <= 0x8f) {
      container = 'map';
      length = token & 0x0f;
    } else if (token <= 0x9f) {
      container = 'array';
      length = token & 0x0f;
    } else if (token <= 0xbf) {
      isString = true;
      length = token & 0x1f;
    } else {
      const sized = readSized(token, view, offset, bytes.length);
      if (typeof sized === 'string') return sized;
      offset = sized.offset;
      length = sized.length;
      container = sized.container;
      isString = sized.isString;
    }
    if (isKey && !isString) return `map key at byte ${offset - 1} is not a string`;
    if (container === null) {
      if (!need(length)) return `value at byte ${offset} claims ${length} bytes, only ${bytes.length - offset} left`;
      offset += length;
      continue;
    }
    const items = container === 'map' ? length * 2 : length;
    if (items > bytes.length - offset) return `${container} at byte ${offset} claims ${length} items, more than the bytes left`;
    if (stack.length >= nestingMax) return `nesting deeper than ${nestingMax}`;
    stack.push({ remaining: items, map: container === 'map', position: 0 });
  }
  if (offset !== bytes.length) return `${bytes.length - offset} trailing bytes after the value`;
  return null;
}

type Sized = { offset: number; length: number; container: 'array' | 'map' | null; isString: boolean };

/** The tokens from 0xc0 to 0xdf: fixed-size scalars and length-prefixed strings, binaries and containers. */
function readSized(token: number, view: DataView, offset: number, total: number): Sized | string {
  const scalar = (bytes: number): Sized => ({ offset, length: bytes, container: null, isString: false });
  const prefixed = (prefixBytes: number, container: Sized['container'], isString: boolean): Sized | string => {
    if (offset + prefixBytes > total) return `truncated length at byte ${offset}`;
    const length = prefixBytes === 1 ? view.getUint8(offset) : prefixBytes === 2 ? view.getUint16(offset) : view.getUint32(offset);
    return { offset: offset + prefixBytes, length, container, isString };
  };
  switch (token) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return scalar(0);
    case 0xcc:
    case 0xd0:
      return scalar(1);
    case 0xcd:
    case 0xd1:
      return scalar(2);
    case 0xca:
    case 0xce:
    case 0xd2:
      return scalar(4);
    case 0xcb:
    case 0xcf:
    case 0xd3:
      return scalar(8);
    case 0xc4:
      return prefixed(1, null, false);
    case 0xc5:
      return prefixed(2, null, false);
    case 0xc6:
      return prefixed(4, null, false);
    case 0xd9:
      return prefixed(1, null, true);
    case 0xda:
      return prefixed(2, null, true);
    case 0xdb:
      return prefixed(4, null, true);
    case 0xdc:
      return prefixed(2, 'array', false);
    case 0xdd:
      return prefixed(4, 'array', false);
    case 0xde:
      return prefixed(2, 'map', false);
    case 0xdf:
      return prefixed(4, 'map', false);
    default:
      // 0xc1 is never used; 0xc7-0xc9 and 0xd4-0xd8 are extensions.
      return `msgpack token 0x${token.toString(16)} at byte ${offset - 1} is not allowed`;
  }
}
