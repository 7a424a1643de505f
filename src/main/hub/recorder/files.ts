import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { z } from 'zod';
import { ClusterEventSchema, err, IncidentSchema, ok, StatusSampleSchema, type Incident, type Result } from '../../../shared/protocol';
import { ShapeInterner, unpack, unpackCompressed } from './codec';
import { appendSample, decodeLagPart, modelFromChain, recordingFormat, recordingFormatVersion, RecordingStore, type OpenChunk } from './store';

/** The file extension of an exported recording. */
export const recordingExtension = '.qsrec';
/** Larger files are refused before anything is read. */
export const recordingFileBytesMax = 2 * 1024 ** 3;
const sqliteMagic = 'SQLite format 3\u0000';

const linkStateSchema = z.enum(['connecting', 'connected', 'stale', 'unreachable', 'refused']);
const timeSchema = z.number().nonnegative();
/** Every message a recording may hold; what a file says is checked against it before it is replayed. */
export const ModelMessageSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sample'), sample: StatusSampleSchema }),
  z.object({ kind: z.literal('event'), event: ClusterEventSchema }),
  z.object({ kind: z.literal('link'), nodeId: z.string().max(64), endpoint: z.string().max(255), state: linkStateSchema, atMs: timeSchema }),
  z.object({ kind: z.literal('tick'), atMs: timeSchema }),
  z.object({
    kind: z.literal('operator'),
    action: z.union([
      z.object({ type: z.literal('transfer'), to: z.string().max(64) }),
      z.object({ type: z.literal('drill'), nodeId: z.string().max(64), drill: z.enum(['pause', 'isolate', 'slow-disk', 'slow-network', 'corrupt']) }),
    ]),
    atMs: timeSchema,
  }),
  z.object({ kind: z.literal('acknowledge'), alertId: z.string().max(200), atMs: timeSchema }),
  z.object({ kind: z.literal('mute'), alertId: z.string().max(200), durationMs: z.number().nonnegative(), atMs: timeSchema }),
]);

/** The keyframe's model is checked for the fields replay relies on; the reducer tolerates the rest. */
const KeyframeModelSchema = z.looseObject({
  config: z.looseObject({ lagHistoryIntervalMs: z.number().positive(), lagHistoryWindowMs: z.number().positive() }),
  nowMs: timeSchema,
  nodes: z.record(z.string(), z.looseObject({ nodeId: z.string() })),
  alerts: z.array(z.looseObject({ id: z.string() })),
  failovers: z.array(z.looseObject({ atMs: timeSchema })),
  timeline: z.array(z.looseObject({ sequence: z.number() })),
});
const LagPartSchema = z.record(z.string(), z.object({ count: z.number().int().nonnegative(), tail: z.array(z.object({ atMs: timeSchema, lagEntries: z.number(), lagMs: z.number() })) }));

export interface ExportRequest {
  source: string;
  fromMs: number;
  toMs: number;
  title: string;
  incidents: Incident[];
}

/**
 * Writes [fromMs, toMs] of one source into a new self-contained `.qsrec`: the
 * keyframe at or before fromMs (made full), the keyframes after it, every
 * message, the incidents that overlap. Samples are re-chunked, losslessly.
 */
export function exportRecording(from: RecordingStore, request: ExportRequest, path: string, appVersion: string): Result<{ path: string; bytes: number }> {
  const chain = from.keyframeChain(request.source, request.fromMs);
  const first = chain.at(-1);
  const model = modelFromChain(chain);
  if (first === undefined || model === null) return err('nothing_recorded', 'nothing is recorded at that time');
  const out = new RecordingStore(path, { create: true });
  try {
    out.transaction(() => {
      const sourceRow = from.sources().find((row) => row.source === request.source);
      out.putSource(request.source, sourceRow?.name ?? request.source, sourceRow?.clusterId ?? null);
      out.setMeta('title', request.title);
      out.setMeta('fromMs', String(first.atMs));
      out.setMeta('toMs', String(request.toMs));
      out.setMeta('exportedAtMs', String(Date.now()));
      out.setMeta('appVersion', appVersion);
      const { lagHistory, ...rest } = model;
      out.putKeyframe(request.source, {
        seq: first.seq,
        atMs: first.atMs,
        full: true,
        model: rest,
        lag: Object.fromEntries(Object.entries(lagHistory).map(([nodeId, points]) => [nodeId, { count: points.length, tail: points }])),
      });
      const copy = from.db.prepare('SELECT seq, at_ms, full, model, lag FROM keyframes WHERE source = ? AND seq > ? AND at_ms <= ? ORDER BY seq');
      const insert = out.db.prepare('INSERT INTO keyframes (source, seq, at_ms, full, model, lag) VALUES (?, ?, ?, ?, ?, ?)');
      for (const row of copy.iterate(request.source, first.seq, request.toMs) as Iterable<{ seq: number; at_ms: number; full: number; model: Buffer; lag: Buffer }>) {
        insert.run(request.source, row.seq, row.at_ms, row.full, row.model, row.lag);
      }
      const open = new Map<string, OpenChunk>();
      const sealed: OpenChunk[] = [];
      const shapes = new ShapeInterner();
      for (const entry of from.messagesBetween(request.source, first.seq, first.atMs, request.toMs + 1e-3)) {
        if (entry.message.kind === 'sample') appendSample(open, sealed, shapes, entry.seq, entry.message);
        else out.putMessage(request.source, entry.seq, entry.message);
      }
      for (const chunk of [...sealed, ...open.values()]) out.putChunk(request.source, chunk);
      for (const incident of request.incidents) out.putIncidentRow(incident.id, incident.source, JSON.stringify(incident), incident.startMs, incident.endMs);
    });
    out.db.pragma('journal_mode = DELETE');
    out.db.exec('VACUUM');
  } finally {
    out.close();
  }
  return ok({ path, bytes: statSync(path).size });
}

function readHeader(path: string): Result<{ sizeBytes: number; pageSize: number; pageCount: number }> {
  let sizeBytes: number;
  try {
    sizeBytes = statSync(path).size;
  } catch (error) {
    return err('unreadable_file', `cannot read ${path}: ${(error as Error).message}`);
  }
  if (sizeBytes > recordingFileBytesMax) return err('file_too_large', `the file is ${sizeBytes} bytes; recordings larger than ${recordingFileBytesMax} bytes are refused`);
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (read < 100 || header.toString('latin1', 0, 16) !== sqliteMagic) return err('foreign_file', 'this is not a Quorumscope recording (it is not an SQLite database)');
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  const pageCount = header.readUInt32BE(28);
  return ok({ sizeBytes, pageSize, pageCount });
}

/**
 * Opens a `.qsrec` for replay, refusing anything that is not a whole, intact
 * recording of a version this app reads: wrong magic, truncation, a failed
 * integrity check, a foreign schema or rows that do not decode.
 */
export function openRecordingFile(path: string): Result<RecordingStore> {
  const header = readHeader(path);
  if (!header.ok) return header;
  if (header.data.pageCount > 0 && header.data.pageCount * header.data.pageSize > header.data.sizeBytes) {
    return err('truncated_file', `the recording is truncated: it should be ${header.data.pageCount * header.data.pageSize} bytes but is ${header.data.sizeBytes}`);
  }
  let store: RecordingStore;
  try {
    store = new RecordingStore(path, { readonly: true });
  } catch (error) {
    return err('corrupt_file', `the recording cannot be opened: ${(error as Error).message}`);
  }
  try {
    const check = (store.db.pragma('quick_check') as { quick_check: string }[]).map((row) => row.quick_check);
    if (check.length !== 1 || check[0] !== 'ok') return fail(store, 'corrupt_file', `the recording is damaged: ${check.slice(0, 3).join('; ')}`);
    const tables = new Set((store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name));
    if (!tables.has('meta')) return fail(store, 'foreign_file', 'this SQLite database is not a Quorumscope recording (it has no format marker)');
    if (store.meta('format') !== recordingFormat) return fail(store, 'foreign_file', 'this SQLite database is not a Quorumscope recording');
    const version = Number(store.meta('formatVersion'));
    if (version !== recordingFormatVersion) {
      return fail(store, 'unsupported_version', version > recordingFormatVersion ? `the recording has format version ${version}; this app reads version ${recordingFormatVersion}: update the app` : `the recording has an unknown format version "${store.meta('formatVersion')}"`);
    }
    for (const table of ['sources', 'shapes', 'chunks', 'pending', 'messages', 'keyframes', 'incidents']) {
      if (!tables.has(table)) return fail(store, 'corrupt_file', `the recording lacks its ${table} table`);
    }
    const rows = validateRows(store);
    if (!rows.ok) return fail(store, rows.error.code, rows.error.message);
    return ok(store);
  } catch (error) {
    return fail(store, 'corrupt_file', `the recording is damaged: ${(error as Error).message}`);
  }
}

function fail(store: RecordingStore, code: string, message: string): Result<never> {
  store.close();
  return err(code, message);
}

/** Samples are decoded and checked this much recording time at a time. */
const validationWindowMs = 60_000;

/** Decodes every row through the schemas; the first bad row refuses the file. */
function validateRows(store: RecordingStore): Result<null> {
  const sources = store.sources();
  if (sources.length === 0) return err('empty_recording', 'the recording holds no cluster');
  for (const row of store.db.prepare('SELECT body FROM messages').iterate() as Iterable<{ body: Buffer }>) {
    const parsed = ModelMessageSchema.safeParse(unpack(row.body));
    if (!parsed.success) return err('corrupt_file', `a recorded message does not decode: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  }
  for (const row of store.db.prepare('SELECT model, lag FROM keyframes').iterate() as Iterable<{ model: Buffer; lag: Buffer }>) {
    if (!KeyframeModelSchema.safeParse(unpackCompressed(row.model)).success || !LagPartSchema.safeParse(decodeLagPart(row.lag)).success) {
      return err('corrupt_file', 'a keyframe of the recording does not decode');
    }
  }
  for (const row of store.db.prepare('SELECT body FROM incidents').iterate() as Iterable<{ body: string }>) {
    if (!IncidentSchema.safeParse(JSON.parse(row.body)).success) return err('corrupt_file', 'an incident of the recording does not decode');
  }
  for (const { source } of sources) {
    const range = store.timeRange(source);
    if (range === null) continue;
    // One window at a time: decoding a long recording whole held every sample in memory at once (hundreds of
    // megabytes for 20 minutes of 50 nodes), and left the player seeking on top of that much garbage.
    // Gaps are skipped to the next recorded time, so the windows visited are bounded by the rows, not by the
    // time range (which a damaged file may make absurd); each step moves strictly forward.
    let fromMs: number | null = range.startMs;
    while (fromMs !== null && fromMs <= range.endMs) {
      const toMs = Math.min(fromMs + validationWindowMs, range.endMs + 1);
      for (const entry of store.messagesBetween(source, 0, fromMs, toMs)) {
        if (entry.message.kind !== 'sample') continue;
        const parsed = StatusSampleSchema.safeParse(entry.message.sample);
        if (!parsed.success) return err('corrupt_file', `a recorded sample does not decode: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      }
      fromMs = store.nextDataMs(source, toMs);
    }
  }
  return ok(null);
}
