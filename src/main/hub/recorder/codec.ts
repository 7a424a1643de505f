import { Packr } from 'msgpackr';
import zlib from 'node:zlib';

/**
 * Compact encodings for the recorder (see README.md in this folder).
 *
 * Samples of one node are stored as columnar chunks: every sample of a chunk
 * has the same shape (the same keys and array lengths), so a chunk is one
 * shape id plus one column per leaf. A column is a constant, a run of integer
 * deltas (decimals are scaled to integers when that is exact), or raw values.
 * The whole chunk is then compressed with brotli. Everything is lossless:
 * decode(encode(x)) deep-equals x, key order included.
 */

export type Leaf = string | number | boolean | null;
type Column = ['k', Leaf] | ['d', number, number[]] | ['r', Leaf[]];

const packr = new Packr({ useRecords: false, moreTypes: false });
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

function encodeColumn(values: Leaf[]): Column {
  const first = values[0] ?? null;
  if (values.every((value) => value === first) && !Object.is(first, -0)) return ['k', first];
  const scale = decimalScale(values);
  if (scale === null) return ['r', values];
  const factor = 10 ** scale;
  const deltas: number[] = [];
  let previous = 0;
  for (const value of values) {
    const scaled = Math.round((value as number) * factor);
    deltas.push(scaled - previous);
    previous = scaled;
  }
  return ['d', scale, deltas];
}

/** Rows of one shape → one compressed chunk body. */
export function encodeChunk(rows: Leaf[][]): Buffer {
  const width = rows[0]?.length ?? 0;
  const columns: Column[] = [];
  for (let column = 0; column < width; column += 1) columns.push(encodeColumn(rows.map((row) => row[column] ?? null)));
  return compress(pack([rows.length, columns]));
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
    if (column[0] === 'k') row[index] = column[1];
    else if (column[0] === 'r') row[index] = column[1][position] ?? null;
    else {
      // A short column reads as null, as a missing raw value does.
      const delta = column[2][position];
      if (delta !== undefined) scaled += delta;
      row[index] = delta === undefined ? null : scaled / 10 ** column[1];
    }
  }
}

export function leafCount(shape: unknown): number {
  if (shape === 0) return 1;
  if (Array.isArray(shape)) return shape.reduce((sum: number, element) => sum + leafCount(element), 0);
  if (shape !== null && typeof shape === 'object') return Object.values(shape).reduce((sum: number, element) => sum + leafCount(element), 0);
  throw new Error('a shape holds something other than objects, arrays and 0');
}
