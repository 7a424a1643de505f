import { Packr } from 'msgpackr';
import zlib from 'node:zlib';

/**
 * Compact encodings for the recorder (see README.md in this folder).
 *
 * Samples of one node are stored as columnar chunks: every sample of a chunk
 * has the same shape (the same keys and array lengths), so a chunk is one
 * shape id plus one column per leaf. A column is a constant, a run of integer
 * deltas (decimals are scaled to integers when that is exact), a line (a first
 * value and a constant step: sequence numbers, times, uptimes), or raw values.
 * The whole chunk is then compressed with brotli. Everything is lossless:
 * decode(encode(x)) deep-equals x, key order included.
 */

export type Leaf = string | number | boolean | null;
/** A constant column is the bare leaf: it is the most common kind (node ids, names, flags), so it costs no header. */
type Column = Leaf | ['d', number, number[]] | ['l', number, number, number] | ['r', Leaf[]];

const packr = new Packr({ useRecords: false, moreTypes: false });
/**
 * For keyframe models, whose objects repeat one layout per node, alert and event: records write each layout's
 * keys once per blob instead of once per object (less than half the bytes to compress), and decode faster.
 * No structures are shared between blobs, so each blob decodes on its own, with the plain `unpack` too.
 */
const recordPackr = new Packr({ useRecords: true, moreTypes: false, structures: [], maxSharedStructures: 0 });
const brotliQuality = 5;
const decimalScaleMax = 3;

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

export function compress(bytes: Uint8Array): Buffer {
  return zlib.brotliCompressSync(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: brotliQuality } });
}

export function decompress(bytes: Uint8Array): Buffer {
  return zlib.brotliDecompressSync(bytes);
}

/** msgpack, then brotli: for keyframes and other one-off blobs. */
export function packCompressed(value: unknown): Buffer {
  return compress(pack(value));
}

/** `packCompressed` with records: for blobs of many objects of a few layouts (keyframe models). */
export function packRecordsCompressed(value: unknown): Buffer {
  return compress(recordPackr.pack(value));
}

export function unpackCompressed(bytes: Uint8Array): unknown {
  return unpack(decompress(bytes));
}

/** Keys repeat in every sample: their JSON spelling is computed once. */
const quotedKeys = new Map<string, string>();
const quotedKeysMax = 10_000;

function quoted(key: string): string {
  let spelled = quotedKeys.get(key);
  if (spelled === undefined) {
    spelled = JSON.stringify(key);
    if (quotedKeys.size < quotedKeysMax) quotedKeys.set(key, spelled);
  }
  return spelled;
}

/**
 * Walks a JSON value, appending its leaves to `leaves` and returning its shape:
 * the value's JSON with every leaf replaced by 0. Two values with the same
 * shape have the same leaves in the same order.
 */
export function flatten(value: unknown, leaves: Leaf[]): string {
  if (value === null || typeof value !== 'object') {
    leaves.push(value as Leaf);
    return '0';
  }
  if (Array.isArray(value)) {
    let shape = '[';
    for (let index = 0; index < value.length; index += 1) shape += (index === 0 ? '' : ',') + flatten(value[index], leaves);
    return `${shape}]`;
  }
  let shape = '{';
  let first = true;
  for (const key in value) {
    shape += `${first ? '' : ','}${quoted(key)}:${flatten((value as Record<string, unknown>)[key], leaves)}`;
    first = false;
  }
  return `${shape}}`;
}

/**
 * A shape compiled for matching: a leaf is null, an array has `keys` null and
 * one child per element, an object lists its keys in iteration order.
 */
export type ShapeTemplate = null | { keys: string[] | null; children: ShapeTemplate[] };

export function compileShape(parsed: unknown): ShapeTemplate {
  if (parsed === 0) return null;
  if (Array.isArray(parsed)) return { keys: null, children: parsed.map(compileShape) };
  if (parsed !== null && typeof parsed === 'object') {
    const keys = Object.keys(parsed);
    return { keys, children: keys.map((key) => compileShape((parsed as Record<string, unknown>)[key])) };
  }
  throw new Error('a shape holds something other than objects, arrays and 0');
}

/**
 * Writes the leaves of `value` into `leaves` from index `at` when it has the
 * shape of `template`, and returns the index after them; -1 when it has
 * another shape (`leaves` then holds a partial walk). No string is built,
 * which is what makes the common case (a node reports the same shape as last
 * time) cheap.
 */
export function flattenLike(template: ShapeTemplate, value: unknown, leaves: Leaf[], at: number): number {
  if (template === null) {
    if (value !== null && typeof value === 'object') return -1;
    leaves[at] = value as Leaf;
    return at + 1;
  }
  if (value === null || typeof value !== 'object') return -1;
  const children = template.children;
  if (template.keys === null) {
    if (!Array.isArray(value) || value.length !== children.length) return -1;
    for (let index = 0; index < children.length && at >= 0; index += 1) at = flattenLike(children[index] as ShapeTemplate, value[index], leaves, at);
    return at;
  }
  if (Array.isArray(value)) return -1;
  const keys = template.keys;
  let index = 0;
  for (const key in value) {
    if (key !== keys[index]) return -1;
    at = flattenLike(children[index] as ShapeTemplate, (value as Record<string, unknown>)[key], leaves, at);
    if (at < 0) return -1;
    index += 1;
  }
  return index === keys.length ? at : -1;
}

/** One distinct shape: its JSON spelling (the shapes table's key) and its compiled template. */
export interface ShapeEntry {
  shape: string;
  template: ShapeTemplate;
  /** Leaves in a value of this shape. */
  width: number;
}

/**
 * Shapes seen by one writer, so that a shape string is built and hashed only
 * when a node's shape changes, and every sample of a shape shares one string.
 */
export class ShapeInterner {
  private readonly entries = new Map<string, ShapeEntry>();

  constructor(private readonly entriesMax = 10_000) {}

  /**
   * Flattens `value` into a new row that starts with `prefix`, trying `expected` (the node's previous shape)
   * before the full walk.
   */
  flatten(value: unknown, prefix: Leaf[], expected: ShapeEntry | undefined): { row: Leaf[]; entry: ShapeEntry } {
    if (expected !== undefined) {
      // Sized once: growing a row leaf by leaf was a good part of the garbage of recording.
      const row = new Array<Leaf>(prefix.length + expected.width);
      for (let index = 0; index < prefix.length; index += 1) row[index] = prefix[index] as Leaf;
      if (flattenLike(expected.template, value, row, prefix.length) === row.length) return { row, entry: expected };
    }
    const row = prefix.slice();
    const shape = flatten(value, row);
    let entry = this.entries.get(shape);
    if (entry === undefined) {
      entry = { shape, template: compileShape(JSON.parse(shape)), width: row.length - prefix.length };
      // Bounded: shapes churn only when a cluster's membership does, so starting over is rare and only costs walks.
      if (this.entries.size >= this.entriesMax) this.entries.clear();
      this.entries.set(shape, entry);
    }
    return { row, entry };
  }
}

/** The inverse of `flatten`: rebuilds a value from its parsed shape and leaves. */
export function unflatten(shape: unknown, leaves: Leaf[], cursor: { at: number }): unknown {
  if (shape === 0) return leaves[cursor.at++];
  if (Array.isArray(shape)) return shape.map((element) => unflatten(element, leaves, cursor));
  const out: Record<string, unknown> = {};
  for (const key in shape as Record<string, unknown>) out[key] = unflatten((shape as Record<string, unknown>)[key], leaves, cursor);
  return out;
}

function decimalScale(values: Leaf[]): number | null {
  for (let scale = 0; scale <= decimalScaleMax; scale += 1) {
    const factor = 10 ** scale;
    let exact = true;
    for (const value of values) {
      if (typeof value !== 'number') return null;
      const scaled = Math.round(value * factor);
      if (!Number.isSafeInteger(scaled) || scaled / factor !== value || Object.is(value, -0)) {
        exact = false;
        break;
      }
    }
    if (exact) return scale;
  }
  return null;
}

function encodeColumn(rows: Leaf[][], column: number): Column {
  const count = rows.length;
  const first = (rows[0] as Leaf[])[column] ?? null;
  let same = 1;
  if (!Object.is(first, -0)) while (same < count && ((rows[same] as Leaf[])[column] ?? null) === first) same += 1;
  if (same === count && !Object.is(first, -0)) return first;
  // Integers (scale 0) are the common case: one pass checks them and computes their deltas.
  const deltas: number[] = new Array<number>(count);
  let previous = 0;
  let integral = true;
  for (let index = 0; index < count; index += 1) {
    const value = (rows[index] as Leaf[])[column] ?? null;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || Object.is(value, -0)) {
      integral = false;
      break;
    }
    deltas[index] = value - previous;
    previous = value;
  }
  if (integral) return deltaColumn(0, deltas);
  const values: Leaf[] = new Array<Leaf>(count);
  for (let index = 0; index < count; index += 1) values[index] = (rows[index] as Leaf[])[column] ?? null;
  const scale = decimalScale(values);
  if (scale === null) return ['r', values];
  const factor = 10 ** scale;
  previous = 0;
  for (let index = 0; index < count; index += 1) {
    const scaled = Math.round((values[index] as number) * factor);
    deltas[index] = scaled - previous;
    previous = scaled;
  }
  return deltaColumn(scale, deltas);
}

function deltaColumn(scale: number, deltas: number[]): Column {
  if (deltas.length < 3) return ['d', scale, deltas];
  const step = deltas[1] as number;
  for (let index = 2; index < deltas.length; index += 1) if (deltas[index] !== step) return ['d', scale, deltas];
  return ['l', scale, deltas[0] as number, step];
}

/** Rows of one shape → one compressed chunk body. */
export function encodeChunk(rows: Leaf[][]): Buffer {
  return compress(pack(chunkColumns(rows)));
}

export function chunkColumns(rows: Leaf[][]): [number, Column[]] {
  const width = rows[0]?.length ?? 0;
  const columns: Column[] = [];
  for (let column = 0; column < width; column += 1) columns.push(encodeColumn(rows, column));
  return [rows.length, columns];
}

/** The inverse of `encodeChunk`. Throws on bytes that are not a chunk; callers at a trust boundary catch. */
export function decodeChunk(bytes: Uint8Array, width: number): Leaf[][] {
  const decoded = unpack(decompress(bytes)) as [number, Column[]];
  if (!Array.isArray(decoded) || !Number.isInteger(decoded[0]) || !Array.isArray(decoded[1]) || decoded[1].length !== width) {
    throw new Error('a sample chunk does not match its shape');
  }
  const [count, columns] = decoded;
  // Rows are filled column by column in place: a player decodes 50 chunks whenever playback enters a new window,
  // and building every column as an array first, then transposing, doubled the work and the garbage.
  const rows: Leaf[][] = [];
  for (let row = 0; row < count; row += 1) rows.push(new Array<Leaf>(width));
  for (let index = 0; index < width; index += 1) fillColumn(columns[index] as Column, rows, index);
  return rows;
}

function fillColumn(column: Column, rows: Leaf[][], index: number): void {
  for (let position = 0, scaled = 0; position < rows.length; position += 1) {
    const row = rows[position] as Leaf[];
    if (!Array.isArray(column)) row[index] = column;
    else if (column[0] === 'r') row[index] = column[1][position] ?? null;
    else if (column[0] === 'l') row[index] = (column[2] + column[3] * position) / 10 ** column[1];
    else {
      // A short column reads as null, as a missing raw value does.
      const delta = column[2][position];
      if (delta !== undefined) scaled += delta;
      row[index] = delta === undefined ? null : scaled / 10 ** column[1];
    }
  }
}

/** `unflatten` from a compiled shape: the same value, without walking the parsed shape's keys for every sample. */
export function unflattenLike(template: ShapeTemplate, leaves: Leaf[], cursor: { at: number }): unknown {
  if (template === null) return leaves[cursor.at++];
  const children = template.children;
  const keys = template.keys;
  if (keys === null) {
    const out: unknown[] = new Array<unknown>(children.length);
    for (let index = 0; index < children.length; index += 1) out[index] = unflattenLike(children[index] as ShapeTemplate, leaves, cursor);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (let index = 0; index < keys.length; index += 1) out[keys[index] as string] = unflattenLike(children[index] as ShapeTemplate, leaves, cursor);
  return out;
}

export function leafCount(shape: unknown): number {
  if (shape === 0) return 1;
  if (Array.isArray(shape)) return shape.reduce((sum: number, element) => sum + leafCount(element), 0);
  if (shape !== null && typeof shape === 'object') return Object.values(shape).reduce((sum: number, element) => sum + leafCount(element), 0);
  throw new Error('a shape holds something other than objects, arrays and 0');
}
