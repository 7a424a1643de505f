import { randomUUID } from 'node:crypto';
import type { ClusterModel, LagPoint, ModelMessage } from '../../../shared/model';
import { err, ok, RecorderSettingsSchema, type Incident, type RecorderSettings, type RecorderStatus, type Result } from '../../../shared/protocol';
import type { Clock, Logger } from '../../../shared/logger';
import { absorbTrigger, createDetectorState, detectTriggers, type DetectorState } from './incidents';
import { ShapeInterner } from './codec';
import { appendSample, chunkWindowMs, RecordingStore, type KeyframeRow, type LagPart, type OpenChunk, type PendingSample, type SequencedMessage } from './store';

/** Buffered messages reach the database at least this often: a kill -9 loses less than a second. */
export const flushIntervalMs = 250;
export const keyframeIntervalMs = 5_000;
/** Every this many keyframes one holds the whole lag history; the others only what is new. */
export const keyframesPerFull = 60;
/** A flush is forced when this many messages are buffered, whatever the timer says. */
export const bufferedMessagesMax = 50_000;
export const retentionCheckIntervalMs = 60_000;
export const defaultRecorderSettings: RecorderSettings = { retentionAgeMs: 7 * 24 * 60 * 60_000, retentionBytesMax: 4 * 1024 ** 3 };

interface SourceState {
  source: string;
  name: string;
  seq: number;
  open: Map<string, OpenChunk>;
  sealed: OpenChunk[];
  pending: PendingSample[];
  messages: SequencedMessage[];
  keyframes: { seq: number; model: ClusterModel }[];
  lastKeyframeAtMs: number | null;
  keyframesSinceFull: number;
  /** Per node, the bucket of the newest lag point already stored in a keyframe. */
  lagStoredBucket: Map<string, number>;
  detector: DetectorState;
  incident: Incident | null;
  dirtyIncidents: Map<string, Incident>;
}

/**
 * Records every message the hub reduces, per source (one per connected
 * profile), into a RecordingStore; keyframes the model; opens incidents.
 */
export class Recorder {
  private readonly sources = new Map<string, SourceState>();
  private readonly shapes = new ShapeInterner();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout;
  private buffered = 0;
  private settings: RecorderSettings;

  private constructor(
    readonly store: RecordingStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    const saved = RecorderSettingsSchema.safeParse(JSON.parse(store.meta('settings') ?? 'null'));
    this.settings = saved.success ? saved.data : defaultRecorderSettings;
    this.recoverPending();
    this.flushTimer = setInterval(() => this.flush(), flushIntervalMs);
    this.flushTimer.unref();
    this.retentionTimer = setInterval(() => this.applyRetention(), retentionCheckIntervalMs);
    this.retentionTimer.unref();
  }

  static open(path: string, clock: Clock, logger: Logger): Result<Recorder> {
    try {
      return ok(new Recorder(new RecordingStore(path, { create: true }), clock, logger));
    } catch (error) {
      return err('recorder_unavailable', `cannot open the recording database ${path}: ${(error as Error).message}`);
    }
  }

  /** Called for every message a cluster connection reduced, with the model it produced. */
  record(source: string, name: string, message: ModelMessage, model: ClusterModel): void {
    const state = this.sourceState(source, name);
    state.seq += 1;
    const entry = { seq: state.seq, message };
    if (message.kind === 'sample') {
      state.pending.push(appendSample(state.open, state.sealed, this.shapes, state.seq, message));
    } else {
      state.messages.push(entry);
    }
    if (state.lastKeyframeAtMs === null || model.nowMs - state.lastKeyframeAtMs >= keyframeIntervalMs) {
      state.keyframes.push({ seq: state.seq, model });
      state.lastKeyframeAtMs = model.nowMs;
    }
    for (const found of detectTriggers(state.detector, model)) this.putIncident(state, absorbTrigger(state.incident, found, () => ({ id: randomUUID(), source, sourceName: name })));
    this.buffered += 1;
    if (this.buffered >= bufferedMessagesMax) this.flush();
  }

  /** An operator's bookmark: an incident around now. */
  bookmark(source: string, name: string, title: string | undefined, notes: string | undefined): Incident {
    const state = this.sourceState(source, name);
    const atMs = this.clock.nowMs();
    const incident = absorbTrigger(null, { trigger: 'bookmark', severity: 'info', title: title ?? 'Bookmark', atMs }, () => ({ id: randomUUID(), source, sourceName: name }));
    const withNotes = { ...incident, notes: notes ?? '' };
    state.dirtyIncidents.set(withNotes.id, withNotes);
    this.flush();
    return withNotes;
  }

  incidents(source?: string): Incident[] {
    this.flush();
    return this.store.incidentRows(source).map((row) => JSON.parse(row.body) as Incident);
  }

  editIncident(id: string, change: Partial<Pick<Incident, 'title' | 'severity' | 'notes'>>): Result<Incident> {
    const current = this.incidents().find((incident) => incident.id === id);
    if (current === undefined) return err('unknown_incident', `no incident with id "${id}"`);
    const edited: Incident = { ...current, ...Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined)) };
    const state = this.sources.get(edited.source);
    if (state?.incident?.id === id) state.incident = edited;
    this.store.putIncidentRow(edited.id, edited.source, JSON.stringify(edited), edited.startMs, edited.endMs);
    return ok(edited);
  }

  status(): RecorderStatus {
    this.flush();
    return {
      ...this.settings,
      path: this.store.path,
      sizeBytes: this.store.sizeBytes(),
      sources: this.store.sources().map((source) => {
        const range = this.store.timeRange(source.source);
        return { ...source, startMs: range?.startMs ?? null, endMs: range?.endMs ?? null };
      }),
    };
  }

  configure(settings: RecorderSettings): RecorderStatus {
    this.settings = settings;
    this.store.setMeta('settings', JSON.stringify(settings));
    this.applyRetention();
    return this.status();
  }

  /** Seals every open chunk, so that a later reader or an export sees the recording whole. */
  sealAll(): void {
    for (const state of this.sources.values()) {
      for (const chunk of state.open.values()) state.sealed.push(chunk);
      state.open.clear();
    }
    this.flush();
  }

  close(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.retentionTimer);
    this.sealAll();
    this.store.db.pragma('incremental_vacuum');
    this.store.checkpoint();
    this.store.close();
  }

  flush(): void {
    if (this.buffered === 0 && [...this.sources.values()].every((state) => state.sealed.length === 0 && state.dirtyIncidents.size === 0)) return;
    try {
      this.store.transaction(() => {
        for (const state of this.sources.values()) this.flushSource(state);
      });
    } catch (error) {
      this.logger.error({ error: (error as Error).message }, 'cannot write the recording');
    }
    this.buffered = 0;
  }

  applyRetention(): void {
    this.flush();
    const nowMs = this.clock.nowMs();
    this.store.deleteBefore(nowMs - this.settings.retentionAgeMs);
    // Bounded: each round drops the oldest tenth of what is left.
    for (let round = 0; round < 20 && this.store.sizeBytes() > this.settings.retentionBytesMax; round += 1) {
      const oldestMs = this.store.oldestMs();
      if (oldestMs === null) break;
      this.store.deleteBefore(oldestMs + Math.max(chunkWindowMs, (nowMs - oldestMs) / 10));
    }
  }

  private sourceState(source: string, name: string): SourceState {
    let state = this.sources.get(source);
    if (state === undefined) {
      this.store.putSource(source, name, null);
      state = {
        source,
        name,
        seq: this.store.lastSeq(source),
        open: new Map(),
        sealed: [],
        pending: [],
        messages: [],
        keyframes: [],
        lastKeyframeAtMs: null,
        keyframesSinceFull: 0,
        lagStoredBucket: new Map(),
        detector: createDetectorState(),
        incident: null,
        dirtyIncidents: new Map(),
      };
      this.sources.set(source, state);
    }
    return state;
  }

  private putIncident(state: SourceState, incident: Incident): void {
    state.incident = incident;
    state.dirtyIncidents.set(incident.id, incident);
  }

  private flushSource(state: SourceState): void {
    for (const chunk of state.sealed) this.store.putChunk(state.source, chunk);
    state.sealed = [];
    // Samples whose chunk was sealed (and stored above, in this transaction) need no crash-safety row.
    const unsealed = state.pending.filter((sample) => (state.open.get(sample.node)?.firstSeq ?? Number.POSITIVE_INFINITY) <= (sample.leaves[0] as number));
    const lastPending = unsealed.at(-1);
    if (lastPending !== undefined) this.store.putPending(state.source, lastPending.leaves[0] as number, unsealed);
    state.pending = [];
    const openFirstSeqs = [...state.open.values()].map((chunk) => chunk.firstSeq);
    this.store.dropPendingBefore(state.source, openFirstSeqs.length === 0 ? state.seq + 1 : Math.min(...openFirstSeqs));
    for (const entry of state.messages) this.store.putMessage(state.source, entry.seq, entry.message);
    state.messages = [];
    for (const keyframe of state.keyframes) this.store.putKeyframe(state.source, this.keyframeRow(state, keyframe.seq, keyframe.model));
    state.keyframes = [];
    for (const incident of state.dirtyIncidents.values()) this.store.putIncidentRow(incident.id, incident.source, JSON.stringify(incident), incident.startMs, incident.endMs);
    state.dirtyIncidents.clear();
  }

  private keyframeRow(state: SourceState, seq: number, model: ClusterModel): KeyframeRow {
    const full = state.keyframesSinceFull === 0;
    state.keyframesSinceFull = (state.keyframesSinceFull + 1) % keyframesPerFull;
    if (full) state.lagStoredBucket.clear();
    const { lagHistory, ...rest } = model;
    const lag: LagPart = {};
    const intervalMs = model.config.lagHistoryIntervalMs;
    for (const [nodeId, points] of Object.entries(lagHistory)) {
      const storedBucket = state.lagStoredBucket.get(nodeId) ?? Number.NEGATIVE_INFINITY;
      const tail: LagPoint[] = points.filter((point) => Math.floor(point.atMs / intervalMs) >= storedBucket);
      lag[nodeId] = { count: points.length, tail };
      const last = points.at(-1);
      if (last !== undefined) state.lagStoredBucket.set(nodeId, Math.floor(last.atMs / intervalMs));
    }
    return { seq, atMs: model.nowMs, full, model: rest, lag };
  }

  /** After a crash, samples that were flushed but not yet sealed into chunks become chunks. */
  private recoverPending(): void {
    for (const { source, name } of this.store.sources()) {
      const pending = this.store.pendingSamples(source, 0);
      if (pending.length === 0) continue;
      const state = this.sourceState(source, name);
      for (const entry of pending) {
        if (entry.message.kind === 'sample' && !this.store.isSealed(source, entry.message.sample.status.nodeId, entry.seq)) appendSample(state.open, state.sealed, this.shapes, entry.seq, entry.message);
      }
      for (const chunk of state.open.values()) state.sealed.push(chunk);
      state.open.clear();
      this.store.transaction(() => {
        for (const chunk of state.sealed) this.store.putChunk(source, chunk);
        this.store.dropPendingBefore(source, Number.MAX_SAFE_INTEGER);
      });
      state.sealed = [];
      this.logger.info({ source, samples: pending.length }, 'recovered samples flushed before an unclean stop');
    }
  }
}
