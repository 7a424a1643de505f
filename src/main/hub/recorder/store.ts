import Database from 'better-sqlite3';
import type { ClusterModel, LagPoint, ModelMessage } from '../../../shared/model';
import type { StatusSample } from '../../../shared/protocol';
import { compileShape, decodeChunk, encodeChunk, leafCount, pack, packCompressed, packRecordsCompressed, unflattenLike, unpack, unpackCompressed, type Leaf, type ShapeEntry, type ShapeInterner, type ShapeTemplate } from './codec';

/**
 * The recording database: one SQLite file (WAL, synchronous=NORMAL) per hub,
 * and the same schema for an exported `.qsrec`. See README.md for the tables.
 */

export const recordingFormat = 'quorumscope-recording';
/**
 * 2: pending rows hold a sample as the leaves that changed since the node's previous sample of the same chunk;
 * keyframe lag parts are columns per node; keyframe models are msgpack records.
 */
export const recordingFormatVersion = 2;
/** A sample chunk never spans two windows of this length, so a seek decodes at most two per node. */
export const chunkWindowMs = 5_000;
export const chunkSamplesMax = 200;

const schemaSql = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, name TEXT NOT NULL, cluster_id TEXT);
CREATE TABLE IF NOT EXISTS shapes (id INTEGER PRIMARY KEY, shape TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS chunks (
  source TEXT NOT NULL, node TEXT NOT NULL, start_ms REAL NOT NULL, end_ms REAL NOT NULL,
  first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL, shape INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (source, node, first_seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_time ON chunks (source, start_ms);
CREATE TABLE IF NOT EXISTS pending (source TEXT NOT NULL, last_seq INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (source, last_seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (source TEXT NOT NULL, seq INTEGER NOT NULL, at_ms REAL NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (source, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (source, at_ms);
CREATE TABLE IF NOT EXISTS keyframes (source TEXT NOT NULL, seq INTEGER NOT NULL, at_ms REAL NOT NULL, full INTEGER NOT NULL, model BLOB NOT NULL, lag BLOB NOT NULL, PRIMARY KEY (source, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keyframes_by_time ON keyframes (source, at_ms);
CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, source TEXT NOT NULL, body TEXT NOT NULL, start_ms REAL NOT NULL, end_ms REAL NOT NULL);
`;

export interface SequencedMessage {
  seq: number;
  message: ModelMessage;
}

/** A keyframe's lag history: per node the series length and the points new since the previous keyframe. */
export type LagPart = Record<string, { count: number; tail: LagPoint[] }>;

/** A lag part on disk: per node [count, atMs column, lagEntries column, lagMs column]. */
type EncodedLagPart = Record<string, [number, number[], number[], number[]]>;

/**
 * Lag parts are the bulk of a seek's keyframe chain (up to 60 parts of about 500 points each): as columns they
 * decode several times faster than as one msgpack map per point.
 */
export function encodeLagPart(lag: LagPart): Buffer {
  const encoded: EncodedLagPart = {};
  for (const [nodeId, part] of Object.entries(lag)) {
    encoded[nodeId] = [part.count, part.tail.map((point) => point.atMs), part.tail.map((point) => point.lagEntries), part.tail.map((point) => point.lagMs)];
  }
  return packCompressed(encoded);
}

/** The inverse of `encodeLagPart`. Throws on bytes that are not a lag part; callers at a trust boundary catch and check the result's types. */
export function decodeLagPart(bytes: Uint8Array): LagPart {
  const encoded = unpackCompressed(bytes) as EncodedLagPart;
  if (encoded === null || typeof encoded !== 'object' || Array.isArray(encoded)) throw new Error('a keyframe lag part does not decode');
  const lag: LagPart = {};
  for (const nodeId of Object.keys(encoded)) {
    const columns = encoded[nodeId];
    if (!Array.isArray(columns) || columns.length !== 4) throw new Error('a keyframe lag part does not decode');
    const [count, atMs, lagEntries, lagMs] = columns;
    if (!Array.isArray(atMs) || !Array.isArray(lagEntries) || !Array.isArray(lagMs) || lagEntries.length !== atMs.length || lagMs.length !== atMs.length) {
      throw new Error('a keyframe lag part does not decode');
    }
    const tail: LagPoint[] = new Array<LagPoint>(atMs.length);
    for (let index = 0; index < atMs.length; index += 1) tail[index] = { atMs: atMs[index] as number, lagEntries: lagEntries[index] as number, lagMs: lagMs[index] as number };
    lag[nodeId] = { count, tail };
  }
  return lag;
}

export interface KeyframeRow {
  seq: number;
  atMs: number;
  full: boolean;
  model: Omit<ClusterModel, 'lagHistory'>;
  lag: LagPart;
}

export interface ChunkInput {
  node: string;
  shape: string;
  rows: Leaf[][];
  startMs: number;
  endMs: number;
  firstSeq: number;
  lastSeq: number;
}

interface ChunkRow {
  node: string;
  first_seq: number;
  last_seq: number;
  shape: number;
  body: Buffer;
}

/** A sample flattened once (one row: [seq, atMs, ...leaves of the status]), for its chunk and for the pending table alike. */
export interface PendingSample {
  node: string;
  shape: string;
  leaves: Leaf[];
  /** The node's previous row in the same open chunk: the pending row stores only what changed since it. */
  base: Leaf[] | null;
}

export interface OpenChunk extends ChunkInput {
  window: number;
  entry: ShapeEntry;
}

/** Adds a sample to its node's open chunk, sealing that chunk first when the shape or window changed or it is full. */
export function appendSample(open: Map<string, OpenChunk>, sealed: OpenChunk[], shapes: ShapeInterner, seq: number, message: Extract<ModelMessage, { kind: 'sample' }>): PendingSample {
  const sample = message.sample;
  const node = sample.status.nodeId;
  const atMs = sample.atMs;
  const current = open.get(node);
  const { row: leaves, entry } = shapes.flatten(sample.status, [seq, atMs], current?.entry);
  const window = Math.floor(atMs / chunkWindowMs);
  if (current !== undefined && current.entry === entry && current.window === window && current.rows.length < chunkSamplesMax) {
    const base = current.rows[current.rows.length - 1] ?? null;
    current.rows.push(leaves);
    current.endMs = atMs;
    current.lastSeq = seq;
    return { node, shape: entry.shape, leaves, base };
  }
  if (current !== undefined) sealed.push(current);
  open.set(node, { node, shape: entry.shape, entry, rows: [leaves], startMs: atMs, endMs: atMs, firstSeq: seq, lastSeq: seq, window });
  return { node, shape: entry.shape, leaves, base: null };
}

/** A pending entry: a whole row, or the [index, value, ...] pairs that differ from the node's previous row. */
type PendingEntry = [node: string, shapeId: number, leaves: Leaf[]] | [node: string, shapeId: number, leaves: null, changes: Leaf[]];

function changedLeaves(leaves: Leaf[], base: Leaf[]): Leaf[] {
  const changes: Leaf[] = [];
  for (let index = 0; index < leaves.length; index += 1) {
    const value = leaves[index] as Leaf;
    const previous = base[index];
    // -0 and 0 are equal to ===, not to the codec: they count as a change.
    if (value !== previous || (value === 0 && !Object.is(value, previous))) changes.push(index, value);
  }
  return changes;
}

function applyChanges(base: Leaf[], changes: Leaf[]): Leaf[] {
  if (changes.length % 2 !== 0) throw new Error('a pending sample does not decode');
  const leaves = base.slice();
  for (let at = 0; at < changes.length; at += 2) {
    const index = changes[at];
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= leaves.length) throw new Error('a pending sample does not decode');
    leaves[index] = changes[at + 1] as Leaf;
  }
  return leaves;
}

/** Decoded chunks kept for a player that reads one window in several steps. */
const decodedChunksMax = 512;

export class RecordingStore {
  private readonly decoded = new Map<string, Leaf[][]>();
  readonly db: Database.Database;
  private readonly shapeIds = new Map<string, number>();
  private readonly shapes = new Map<number, { template: ShapeTemplate; width: number }>();
  private readonly statements;

  /** Opens (creating if asked) a recording database. Throws on a file SQLite cannot open. */
  constructor(
    readonly path: string,
    options: { readonly?: boolean; create?: boolean } = {},
  ) {
    this.db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: !(options.create ?? false) });
    if (!(options.readonly ?? false)) {
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(schemaSql);
      const insertMeta = this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
      insertMeta.run('format', recordingFormat);
      insertMeta.run('formatVersion', String(recordingFormatVersion));
      insertMeta.run('createdAtMs', String(Date.now()));
    }
    this.statements = options.readonly ?? false ? null : this.prepareWrites();
  }

  private prepareWrites() {
    return {
      source: this.db.prepare('INSERT INTO sources (source, name, cluster_id) VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET name = excluded.name, cluster_id = coalesce(excluded.cluster_id, cluster_id)'),
      shape: this.db.prepare('INSERT INTO shapes (shape) VALUES (?) ON CONFLICT (shape) DO UPDATE SET shape = shape RETURNING id'),
      chunk: this.db.prepare('INSERT OR REPLACE INTO chunks (source, node, start_ms, end_ms, first_seq, last_seq, count, shape, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      pending: this.db.prepare('INSERT OR REPLACE INTO pending (source, last_seq, body) VALUES (?, ?, ?)'),
      dropPending: this.db.prepare('DELETE FROM pending WHERE source = ? AND last_seq < ?'),
      message: this.db.prepare('INSERT OR REPLACE INTO messages (source, seq, at_ms, kind, body) VALUES (?, ?, ?, ?, ?)'),
      keyframe: this.db.prepare('INSERT OR REPLACE INTO keyframes (source, seq, at_ms, full, model, lag) VALUES (?, ?, ?, ?, ?, ?)'),
      incident: this.db.prepare('INSERT OR REPLACE INTO incidents (id, source, body, start_ms, end_ms) VALUES (?, ?, ?, ?, ?)'),
    };
  }

  private writes() {
    if (this.statements === null) throw new Error('the recording is open read-only');
    return this.statements;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  meta(key: string): string | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  putSource(source: string, name: string, clusterId: string | null): void {
    this.writes().source.run(source, name, clusterId);
  }

  sources(): { source: string; name: string; clusterId: string | null }[] {
    return (this.db.prepare('SELECT source, name, cluster_id AS clusterId FROM sources ORDER BY source').all() as { source: string; name: string; clusterId: string | null }[]).map((row) => ({ ...row }));
  }

  /** The highest sequence number stored for a source, so a restarted recorder continues after it. */
  lastSeq(source: string): number {
    const row = this.db
      .prepare(
        `SELECT max(coalesce((SELECT max(last_seq) FROM chunks WHERE source = @s), 0), coalesce((SELECT max(seq) FROM messages WHERE source = @s), 0),
         coalesce((SELECT max(last_seq) FROM pending WHERE source = @s), 0), coalesce((SELECT max(seq) FROM keyframes WHERE source = @s), 0)) AS seq`,
      )
      .get({ s: source }) as { seq: number };
    return row.seq;
  }

  timeRange(source: string): { startMs: number; endMs: number } | null {
    const row = this.db
      .prepare(
        `SELECT min(lo) AS startMs, max(hi) AS endMs FROM (
           SELECT min(start_ms) AS lo, max(end_ms) AS hi FROM chunks WHERE source = @s
           UNION ALL SELECT min(at_ms), max(at_ms) FROM messages WHERE source = @s
           UNION ALL SELECT min(at_ms), max(at_ms) FROM keyframes WHERE source = @s)`,
      )
      .get({ s: source }) as { startMs: number | null; endMs: number | null };
    return row.startMs === null || row.endMs === null ? null : { startMs: row.startMs, endMs: row.endMs };
  }

  shapeId(shape: string): number {
    const known = this.shapeIds.get(shape);
    if (known !== undefined) return known;
    const row = this.writes().shape.get(shape) as { id: number };
    this.shapeIds.set(shape, row.id);
    return row.id;
  }

  private shape(id: number): { template: ShapeTemplate; width: number } {
    const known = this.shapes.get(id);
    if (known !== undefined) return known;
    const row = this.db.prepare('SELECT shape FROM shapes WHERE id = ?').get(id) as { shape: string } | undefined;
    if (row === undefined) throw new Error(`a chunk refers to shape ${id}, which the file does not hold`);
    const parsed: unknown = JSON.parse(row.shape);
    const entry = { template: compileShape(parsed), width: leafCount(parsed) };
    this.shapes.set(id, entry);
    return entry;
  }

  putChunk(source: string, chunk: ChunkInput): void {
    const body = encodeChunk(chunk.rows);
    this.writes().chunk.run(source, chunk.node, chunk.startMs, chunk.endMs, chunk.firstSeq, chunk.lastSeq, chunk.rows.length, this.shapeId(chunk.shape), body);
  }

  /** Samples not yet in a sealed chunk, as flattened rows, so that a crash loses none of what was flushed. */
  putPending(source: string, lastSeq: number, samples: PendingSample[]): void {
    const entries: PendingEntry[] = samples.map((sample) =>
      sample.base === null ? [sample.node, this.shapeId(sample.shape), sample.leaves] : [sample.node, this.shapeId(sample.shape), null, changedLeaves(sample.leaves, sample.base)],
    );
    this.writes().pending.run(source, lastSeq, pack(entries));
  }

  dropPendingBefore(source: string, seq: number): void {
    this.writes().dropPending.run(source, seq);
  }

  putMessage(source: string, seq: number, message: ModelMessage): void {
    const atMs = message.kind === 'sample' ? message.sample.atMs : message.kind === 'event' ? message.event.atMs : message.atMs;
    this.writes().message.run(source, seq, atMs, message.kind, pack(message));
  }

  putKeyframe(source: string, row: KeyframeRow): void {
    this.writes().keyframe.run(source, row.seq, row.atMs, row.full ? 1 : 0, packRecordsCompressed(row.model), encodeLagPart(row.lag));
  }

  putIncidentRow(id: string, source: string, body: string, startMs: number, endMs: number): void {
    this.writes().incident.run(id, source, body, startMs, endMs);
  }

  incidentRows(source?: string): { id: string; body: string }[] {
    const sql = `SELECT id, body FROM incidents ${source === undefined ? '' : 'WHERE source = @s'} ORDER BY start_ms`;
    return this.db.prepare(sql).all(source === undefined ? {} : { s: source }) as { id: string; body: string }[];
  }

  /** Keyframes from the latest full one at or before `atMs` up to the latest at or before it, oldest first. */
  keyframeChain(source: string, atMs: number): KeyframeRow[] {
    const full = this.db.prepare('SELECT seq FROM keyframes WHERE source = ? AND at_ms <= ? AND full = 1 ORDER BY at_ms DESC, seq DESC LIMIT 1').get(source, atMs) as { seq: number } | undefined;
    const first =
      full ?? (this.db.prepare('SELECT seq FROM keyframes WHERE source = ? AND full = 1 ORDER BY seq LIMIT 1').get(source) as { seq: number } | undefined);
    if (first === undefined) return [];
    const rows = this.db
      .prepare('SELECT seq, at_ms AS atMs, full, model, lag FROM keyframes WHERE source = ? AND seq >= ? AND (at_ms <= ? OR seq = ?) ORDER BY seq')
      .all(source, first.seq, atMs, first.seq) as { seq: number; atMs: number; full: number; model: Buffer; lag: Buffer }[];
    // Only the last keyframe's model is needed; every lag part is.
    return rows.map((row, index) => ({
      seq: row.seq,
      atMs: row.atMs,
      full: row.full === 1,
      model: index === rows.length - 1 ? (unpackCompressed(row.model) as KeyframeRow['model']) : (null as unknown as KeyframeRow['model']),
      lag: decodeLagPart(row.lag),
    }));
  }

  keyframeTimes(source: string): { seq: number; atMs: number; full: boolean }[] {
    return (this.db.prepare('SELECT seq, at_ms AS atMs, full FROM keyframes WHERE source = ? ORDER BY seq').all(source) as { seq: number; atMs: number; full: number }[]).map((row) => ({
      seq: row.seq,
      atMs: row.atMs,
      full: row.full === 1,
    }));
  }

  /**
   * Every recorded message of a source with `fromSeq < seq` and `fromMs <= atMs < toMs`, in
   * sequence order: non-sample messages, sealed chunks and samples still pending.
   */
  messagesBetween(source: string, fromSeq: number, fromMs: number, toMs: number): SequencedMessage[] {
    const out: SequencedMessage[] = [];
    const rows = this.db.prepare('SELECT seq, body FROM messages WHERE source = ? AND at_ms >= ? AND at_ms < ? AND seq > ?').all(source, fromMs, toMs, fromSeq) as { seq: number; body: Buffer }[];
    for (const row of rows) out.push({ seq: row.seq, message: unpack(row.body) as ModelMessage });
    const windowStartMs = Math.floor(fromMs / chunkWindowMs) * chunkWindowMs;
    const chunks = this.db
      .prepare('SELECT node, first_seq, last_seq, shape, body FROM chunks WHERE source = ? AND start_ms >= ? AND start_ms < ? AND last_seq > ?')
      .all(source, windowStartMs, toMs, fromSeq) as ChunkRow[];
    const sealed = new Map<string, { first: number; last: number }[]>();
    for (const chunk of chunks) {
      const { template, width } = this.shape(chunk.shape);
      for (const row of this.decodeCached(chunk, width + 2)) {
        const seq = row[0] as number;
        const atMs = row[1] as number;
        if (seq <= fromSeq || atMs < fromMs || atMs >= toMs) continue;
        const status = unflattenLike(template, row, { at: 2 }) as StatusSample['status'];
        out.push({ seq, message: { kind: 'sample', sample: { atMs, status } } });
      }
      const ranges = sealed.get(chunk.node) ?? [];
      ranges.push({ first: chunk.first_seq, last: chunk.last_seq });
      sealed.set(chunk.node, ranges);
    }
    for (const pending of this.pendingSamples(source, fromSeq)) {
      if (pending.message.kind !== 'sample') continue;
      const { atMs, status } = pending.message.sample;
      if (atMs < fromMs || atMs >= toMs || this.isSealed(source, status.nodeId, pending.seq, sealed)) continue;
      out.push(pending);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  private decodeCached(chunk: ChunkRow, width: number): Leaf[][] {
    const key = `${chunk.node}@${chunk.first_seq}`;
    const known = this.decoded.get(key);
    if (known !== undefined) return known;
    const rows = decodeChunk(chunk.body, width);
    if (this.decoded.size >= decodedChunksMax) this.decoded.delete(this.decoded.keys().next().value as string);
    this.decoded.set(key, rows);
    return rows;
  }

  isSealed(source: string, node: string, seq: number, known = new Map<string, { first: number; last: number }[]>()): boolean {
    if ((known.get(node) ?? []).some((range) => range.first <= seq && seq <= range.last)) return true;
    return this.db.prepare('SELECT 1 FROM chunks WHERE source = ? AND node = ? AND first_seq <= ? AND last_seq >= ? LIMIT 1').get(source, node, seq, seq) !== undefined;
  }

  /**
   * Pending samples after `afterSeq`. Every pending row is read: a row may hold only changes against an earlier
   * row. A change whose base row is gone belongs to a chunk that was sealed (rows are dropped only once the
   * chunks they feed are stored), so it is skipped, as sealed samples are by the callers.
   */
  pendingSamples(source: string, afterSeq: number): SequencedMessage[] {
    const rows = this.db.prepare('SELECT body FROM pending WHERE source = ? ORDER BY last_seq').all(source) as { body: Buffer }[];
    const out: SequencedMessage[] = [];
    const previous = new Map<string, Leaf[] | null>();
    for (const row of rows) {
      const entries = unpack(row.body) as PendingEntry[];
      if (!Array.isArray(entries)) throw new Error('a pending row does not decode');
      for (const entry of entries) {
        const [node, shapeId, whole] = entry;
        const base = previous.get(node) ?? null;
        const leaves = whole ?? (base === null ? null : applyChanges(base, entry[3] ?? []));
        previous.set(node, leaves);
        if (leaves === null) continue;
        const seq = leaves[0] as number;
        if (seq <= afterSeq) continue;
        const status = unflattenLike(this.shape(shapeId).template, leaves, { at: 2 }) as StatusSample['status'];
        out.push({ seq, message: { kind: 'sample', sample: { atMs: leaves[1] as number, status } } });
      }
    }
    return out;
  }

  /** The next time at or after `atMs` with anything recorded, to skip gaps quickly; null at the end. */
  nextDataMs(source: string, atMs: number): number | null {
    // A chunk never spans two windows, so one that ends at or after `atMs` starts in its window or later: the
    // bound lets SQLite walk chunks_by_time from there and stop at the first match instead of scanning every chunk.
    const row = this.db
      .prepare(
        `SELECT min(t) AS t FROM (SELECT (SELECT start_ms FROM chunks WHERE source = @s AND start_ms >= @w AND end_ms >= @a ORDER BY start_ms LIMIT 1) AS t
         UNION ALL SELECT min(at_ms) FROM messages WHERE source = @s AND at_ms >= @a)`,
      )
      .get({ s: source, a: atMs, w: Math.floor(atMs / chunkWindowMs) * chunkWindowMs }) as { t: number | null };
    const pending = this.pendingSamples(source, 0).find((entry) => entry.message.kind === 'sample' && entry.message.sample.atMs >= atMs);
    const pendingMs = pending?.message.kind === 'sample' ? pending.message.sample.atMs : null;
    if (row.t === null) return pendingMs;
    return pendingMs === null ? Math.max(row.t, atMs) : Math.max(Math.min(row.t, pendingMs), atMs);
  }

  /** Event messages (not samples or ticks) per bucket, for the scrubber. */
  eventDensity(source: string, startMs: number, endMs: number, buckets: number): number[] {
    const widthMs = Math.max(1, (endMs - startMs) / buckets);
    const counts = new Array<number>(buckets).fill(0);
    const rows = this.db
      .prepare("SELECT CAST((at_ms - @from) / @width AS INTEGER) AS bucket, count(*) AS n FROM messages WHERE source = @s AND kind IN ('event', 'operator', 'link') AND at_ms >= @from AND at_ms <= @to GROUP BY bucket")
      .all({ s: source, from: startMs, to: endMs, width: widthMs }) as { bucket: number; n: number }[];
    for (const row of rows) {
      const bucket = Math.min(buckets - 1, Math.max(0, row.bucket));
      counts[bucket] = (counts[bucket] ?? 0) + row.n;
    }
    return counts;
  }

  /** The time of the nearest event message strictly after (or before) `atMs`. */
  adjacentEventMs(source: string, atMs: number, direction: 1 | -1): number | null {
    const sql =
      direction === 1
        ? "SELECT at_ms AS t FROM messages WHERE source = ? AND kind = 'event' AND at_ms > ? ORDER BY at_ms LIMIT 1"
        : "SELECT at_ms AS t FROM messages WHERE source = ? AND kind = 'event' AND at_ms < ? ORDER BY at_ms DESC LIMIT 1";
    const row = this.db.prepare(sql).get(source, atMs) as { t: number } | undefined;
    return row?.t ?? null;
  }

  /** Bytes in use (free pages excluded). */
  sizeBytes(): number {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * pageSize;
  }

  /** Deletes everything of every source older than `beforeMs`. */
  deleteBefore(beforeMs: number): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM chunks WHERE end_ms < ?').run(beforeMs);
      this.db.prepare('DELETE FROM messages WHERE at_ms < ?').run(beforeMs);
      this.db.prepare('DELETE FROM keyframes WHERE at_ms < ?').run(beforeMs);
      this.db.prepare('DELETE FROM incidents WHERE end_ms < ?').run(beforeMs);
    });
    this.db.pragma('incremental_vacuum');
  }

  oldestMs(): number | null {
    const row = this.db.prepare('SELECT min(t) AS t FROM (SELECT min(start_ms) AS t FROM chunks UNION ALL SELECT min(at_ms) FROM messages)').get() as { t: number | null };
    return row.t;
  }

  checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }
}

/** Rebuilds a keyframe's full lag history from the chain of lag parts that ends with it. */
export function lagHistoryFromChain(chain: KeyframeRow[], intervalMs: number): Record<string, LagPoint[]> {
  const last = chain.at(-1);
  const history: Record<string, LagPoint[]> = {};
  for (const [nodeId, part] of Object.entries(last?.lag ?? {})) {
    const tails: LagPoint[][] = [];
    for (const keyframe of chain) {
      const tail = keyframe.lag[nodeId]?.tail;
      if (tail !== undefined && tail.length > 0) tails.push(tail);
    }
    const points = mergeSortedTails(tails, intervalMs) ?? mergeTails(tails, intervalMs);
    history[nodeId] = points.slice(Math.max(0, points.length - part.count));
  }
  return history;
}

/** Every point of the tails, one per bucket (a later keyframe holds a newer version of a bucket's point, the peak within it: it wins), by time. */
function mergeTails(tails: LagPoint[][], intervalMs: number): LagPoint[] {
  const points = new Map<number, LagPoint>();
  for (const tail of tails) for (const point of tail) points.set(Math.floor(point.atMs / intervalMs), point);
  return [...points.values()].sort((a, b) => a.atMs - b.atMs);
}

/**
 * `mergeTails` for the usual case, where every tail is in strictly increasing bucket order and overlaps the
 * merged points only at their end: linear instead of a map and a sort. Null when the tails are not like that.
 */
function mergeSortedTails(tails: LagPoint[][], intervalMs: number): LagPoint[] | null {
  const merged: LagPoint[] = [];
  const buckets: number[] = [];
  for (const tail of tails) {
    let previousBucket = Number.NEGATIVE_INFINITY;
    const firstBucket = Math.floor((tail[0] as LagPoint).atMs / intervalMs);
    // Points of earlier tails in buckets this tail also covers must all be replaced by it, in place.
    let keep = buckets.length;
    while (keep > 0 && (buckets[keep - 1] as number) >= firstBucket) keep -= 1;
    const overlapped = buckets.slice(keep);
    merged.length = keep;
    buckets.length = keep;
    let overlapAt = 0;
    for (const point of tail) {
      const bucket = Math.floor(point.atMs / intervalMs);
      if (bucket <= previousBucket) return null;
      previousBucket = bucket;
      if (overlapAt < overlapped.length && overlapped[overlapAt] === bucket) overlapAt += 1;
      else if (overlapAt < overlapped.length && (overlapped[overlapAt] as number) < bucket) return null;
      merged.push(point);
      buckets.push(bucket);
    }
    if (overlapAt < overlapped.length) return null;
  }
  return merged;
}

export function modelFromChain(chain: KeyframeRow[]): ClusterModel | null {
  const last = chain.at(-1);
  if (last === undefined) return null;
  return { ...last.model, lagHistory: lagHistoryFromChain(chain, last.model.config.lagHistoryIntervalMs) } as ClusterModel;
}
