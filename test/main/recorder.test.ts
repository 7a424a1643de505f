import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syntheticMessages } from '../../bench/lib/synthetic-cluster';
import { exportRecording, openRecordingFile } from '../../src/main/hub/recorder/files';
import { Player } from '../../src/main/hub/recorder/player';
import { Recorder } from '../../src/main/hub/recorder/recorder';
import { decodeChunk, encodeChunk, flatten, unflatten, type Leaf } from '../../src/main/hub/recorder/codec';
import { RecordingStore } from '../../src/main/hub/recorder/store';
import { createClusterModel, reduce, type ClusterModel, type ModelMessage } from '../../src/shared/model';
import { silentLogger } from '../../src/shared/logger';

const startMs = 1_700_000_000_000;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'quorumscope-recorder-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function timeOf(message: ModelMessage): number {
  return message.kind === 'sample' ? message.sample.atMs : message.kind === 'event' ? message.event.atMs : message.atMs;
}

/** Records a synthetic cluster live, keeping the model after every message to compare replay against. */
function recordSynthetic(file: string, durationMs: number, nodes = 5): { models: { atMs: number; model: ClusterModel }[]; messages: ModelMessage[] } {
  let nowMs = startMs;
  const opened = Recorder.open(file, { nowMs: () => nowMs }, silentLogger);
  if (!opened.ok) throw new Error(opened.error.message);
  const recorder = opened.data;
  let model = createClusterModel();
  const models: { atMs: number; model: ClusterModel }[] = [];
  const messages: ModelMessage[] = [];
  for (const message of syntheticMessages({ nodes, sampleIntervalMs: 100, startMs, seed: 7, failoverEveryMs: 20_000 }, durationMs)) {
    nowMs = timeOf(message);
    model = reduce(model, message);
    recorder.record('p1', 'prod', message, model);
    models.push({ atMs: nowMs, model });
    messages.push(message);
  }
  recorder.close();
  return { models, messages };
}

/** The live model once every message at or before `atMs` was reduced. */
function liveAt(models: { atMs: number; model: ClusterModel }[], atMs: number): ClusterModel {
  let found = models[0]?.model;
  for (const entry of models) {
    if (entry.atMs > atMs) break;
    found = entry.model;
  }
  if (found === undefined) throw new Error('no model');
  return found;
}

function playerOf(store: RecordingStore): Player {
  return new Player(store, { origin: 'file', label: 'test', source: 'p1', sourceName: 'prod' }, { nowMs: () => 0 }, () => {}, []);
}

describe('recorder codec', () => {
  it('a chunk of samples decodes to exactly the samples encoded, decimals and key order included', () => {
    const samples = [...syntheticMessages({ nodes: 3, sampleIntervalMs: 100, startMs, seed: 1 }, 2_000)].filter((message) => message.kind === 'sample');
    const byNode = samples.filter((message) => message.kind === 'sample' && message.sample.status.nodeId === 'n1');
    const rows: Leaf[][] = [];
    let shape = '';
    for (const message of byNode) {
      const leaves: Leaf[] = [];
      shape = flatten(message, leaves);
      rows.push(leaves);
    }
    const decoded = decodeChunk(encodeChunk(rows), rows[0]?.length ?? 0).map((row) => unflatten(JSON.parse(shape), row, { at: 0 }));
    expect(JSON.stringify(decoded)).toBe(JSON.stringify(byNode));
  });

  it('every kind of column decodes to exactly its values: constants, lines, deltas, decimals and mixed raw values', () => {
    const columns: Leaf[][] = [
      [7, 7, 7, 7],
      ['n1', 'n1', 'n1', 'n1'],
      [null, null, null, null],
      [1_700_000_000_000, 1_700_000_000_100, 1_700_000_000_200, 1_700_000_000_300],
      [0.1, 0.2, 0.3, 0.4],
      [0.1, 0.1 + 0.1, 0.1 + 0.1 + 0.1, 0.4],
      [5, 3, 9, -2],
      [1.5, 2.25, 0, 4],
      [1, 'a', true, null],
      [2 ** 53 - 1, 2 ** 53, 0, 1],
    ];
    const rows = columns[0]?.map((_, row) => columns.map((column) => column[row] ?? null)) ?? [];
    const decoded = decodeChunk(encodeChunk(rows), columns.length);
    for (const [row, leaves] of rows.entries()) for (const [index, value] of leaves.entries()) expect(Object.is(decoded[row]?.[index], value)).toBe(true);
  });
});

describe('recorder and player', () => {
  it('seeking to any time gives the model live had at that time (keyframe, then the same reducer)', () => {
    const file = path.join(dir, 'recording.sqlite');
    // Longer than the lag window and than a run of partial keyframes, so lag history is rebuilt across keyframes.
    const { models } = recordSynthetic(file, 400_000, 3);
    const opened = openRecordingFile(file);
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    const player = playerOf(opened.data);
    for (const offsetMs of [0, 1_234, 4_999, 5_000, 17_350, 20_050, 41_000, 299_999, 333_333, 399_900]) {
      player.seek(startMs + offsetMs);
      expect(player.currentModel()).toEqual(liveAt(models, startMs + offsetMs));
    }
    opened.data.close();
  });

  it('samples flushed but not yet sealed into chunks read back exactly as recorded (crash-safety rows hold changes only)', () => {
    const file = path.join(dir, 'recording.sqlite');
    let nowMs = startMs;
    const opened = Recorder.open(file, { nowMs: () => nowMs }, silentLogger);
    if (!opened.ok) throw new Error(opened.error.message);
    const recorded: { seq: number; message: ModelMessage }[] = [];
    let flushedAtMs = startMs;
    // A failover every 3 s changes the shape of two nodes' samples in the middle of their chunks.
    for (const message of syntheticMessages({ nodes: 4, sampleIntervalMs: 100, startMs, seed: 3, failoverEveryMs: 3_000 }, 12_000)) {
      nowMs = timeOf(message);
      opened.data.record('p1', 'prod', message, createClusterModel());
      recorded.push({ seq: recorded.length + 1, message });
      if (nowMs - flushedAtMs >= 250) {
        opened.data.flush();
        flushedAtMs = nowMs;
      }
    }
    opened.data.flush();
    // Read as a crashed recorder leaves the file: open chunks exist only as pending rows.
    const store = new RecordingStore(file, { readonly: true });
    expect(store.db.prepare('SELECT count(*) AS n FROM pending').get()).not.toEqual({ n: 0 });
    const samples = recorded.filter((entry) => entry.message.kind === 'sample');
    expect(store.messagesBetween('p1', 0, startMs, startMs + 12_000).filter((entry) => entry.message.kind === 'sample')).toEqual(samples);
    const pending = store.pendingSamples('p1', 0);
    expect(pending.length).toBeGreaterThan(0);
    for (const entry of pending) expect(entry).toEqual(samples.find((sample) => sample.seq === entry.seq));
    store.close();
    opened.data.close();
  });

  it('playing forward from a seek passes through the same models as live', () => {
    const file = path.join(dir, 'recording.sqlite');
    const { models } = recordSynthetic(file, 30_000);
    const opened = openRecordingFile(file);
    if (!opened.ok) throw new Error(opened.error.message);
    const player = playerOf(opened.data);
    player.seek(startMs + 2_000);
    for (let atMs = startMs + 2_000; atMs < startMs + 30_000; atMs += 777) {
      player.advanceTo(atMs);
      expect(player.currentModel()).toEqual(liveAt(models, atMs));
    }
    opened.data.close();
  });

  it('opens an incident on each failover with 30 s of pre-roll and post-roll', () => {
    const file = path.join(dir, 'recording.sqlite');
    recordSynthetic(file, 45_000);
    const opened = openRecordingFile(file);
    if (!opened.ok) throw new Error(opened.error.message);
    const incidents = opened.data.incidentRows('p1').map((row) => JSON.parse(row.body) as { trigger: string; startMs: number; endMs: number; triggerAtMs: number });
    const failovers = incidents.filter((incident) => incident.trigger === 'failover');
    expect(failovers.length).toBeGreaterThanOrEqual(1);
    expect(failovers[0]?.startMs).toBe((failovers[0]?.triggerAtMs ?? 0) - 30_000);
    expect(failovers[0]?.endMs).toBeGreaterThanOrEqual((failovers[0]?.triggerAtMs ?? 0) + 30_000);
    opened.data.close();
  });

  it('an export of a time range imports losslessly: the same messages and the same models', () => {
    const file = path.join(dir, 'recording.sqlite');
    const { models, messages } = recordSynthetic(file, 40_000);
    const source = openRecordingFile(file);
    if (!source.ok) throw new Error(source.error.message);
    const exported = exportRecording(source.data, { source: 'p1', fromMs: startMs + 12_000, toMs: startMs + 33_000, title: 't', incidents: [] }, path.join(dir, 'range.qsrec'), 'test');
    expect(exported.ok).toBe(true);
    const imported = openRecordingFile(path.join(dir, 'range.qsrec'));
    if (!imported.ok) throw new Error(imported.error.message);
    const range = imported.data.timeRange('p1');
    const replayed = imported.data.messagesBetween('p1', 0, range?.startMs ?? 0, startMs + 33_000 + 1).map((entry) => entry.message);
    const original = messages.filter((message) => timeOf(message) >= (range?.startMs ?? 0) && timeOf(message) <= startMs + 33_000);
    // The export starts at the keyframe before the range, which may sit mid-batch: compare from the first message it holds.
    expect(replayed).toEqual(original.slice(original.length - replayed.length));
    expect(replayed.length).toBeGreaterThan(original.length - 20);
    const player = playerOf(imported.data);
    for (const offsetMs of [12_000, 20_500, 32_900]) {
      player.seek(startMs + offsetMs);
      expect(player.currentModel()).toEqual(liveAt(models, startMs + offsetMs));
    }
    imported.data.close();
    source.data.close();
  });

  it('refuses a foreign file, a foreign SQLite database, a truncated and a corrupted recording, each with a clear message', () => {
    const file = path.join(dir, 'recording.sqlite');
    recordSynthetic(file, 20_000);
    const source = openRecordingFile(file);
    if (!source.ok) throw new Error(source.error.message);
    const good = path.join(dir, 'good.qsrec');
    expect(exportRecording(source.data, { source: 'p1', fromMs: startMs, toMs: startMs + 20_000, title: 't', incidents: [] }, good, 'test').ok).toBe(true);
    source.data.close();
    const bytes = readFileSync(good);

    const text = path.join(dir, 'notes.qsrec');
    writeFileSync(text, 'hello, this is not a recording at all; it is long enough to have a header........................................');
    expect(openRecordingFile(text)).toMatchObject({ ok: false, error: { code: 'foreign_file' } });

    const other = path.join(dir, 'other.qsrec');
    const db = new Database(other);
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1);');
    db.close();
    expect(openRecordingFile(other)).toMatchObject({ ok: false, error: { code: 'foreign_file' } });

    const truncated = path.join(dir, 'truncated.qsrec');
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(openRecordingFile(truncated)).toMatchObject({ ok: false, error: { code: 'truncated_file' } });

    // Flip bytes in the middle of the file, where the chunk and keyframe pages are.
    const corrupted = path.join(dir, 'corrupted.qsrec');
    const damaged = Buffer.from(bytes);
    for (let offset = Math.floor(damaged.length / 3); offset < Math.floor(damaged.length / 3) + 4096; offset += 7) damaged[offset] = (damaged[offset] ?? 0) ^ 0x5a;
    writeFileSync(corrupted, damaged);
    const refused = openRecordingFile(corrupted);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.message).toMatch(/damaged|decode|cannot be opened/);

    const newer = path.join(dir, 'newer.qsrec');
    writeFileSync(newer, bytes);
    const bump = new Database(newer);
    bump.prepare("UPDATE meta SET value = '99' WHERE key = 'formatVersion'").run();
    bump.close();
    expect(openRecordingFile(newer)).toMatchObject({ ok: false, error: { code: 'unsupported_version' } });

    expect(openRecordingFile(good).ok).toBe(true);
  });
});
