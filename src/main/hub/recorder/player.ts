import { reduce, summarizeForRenderer, type ClusterModel } from '../../../shared/model';
import type { Incident, ReplayState } from '../../../shared/protocol';
import type { Clock } from '../../../shared/logger';
import { chunkWindowMs, modelFromChain, type RecordingStore, type SequencedMessage } from './store';

/** A playing recording advances this often (about one display frame). */
export const playFrameIntervalMs = 16;
/** The scrubber's event-density resolution. */
export const densityBuckets = 200;
/** Bounds the gap-skipping loop of one advance. */
const loadRoundsMax = 10_000;
/** While playing, messages are read this far ahead at a time. */
const loadSpanMs = 1_000;

export interface PlayerOrigin {
  origin: ReplayState['origin'];
  label: string;
  source: string;
  sourceName: string;
}

/**
 * Replays one recorded source: seek(t) starts from the nearest keyframe at or
 * before t and feeds the recorded messages through the same `reduce` as live.
 */
export class Player {
  private model: ClusterModel | null = null;
  private atMs = 0;
  private buffer: SequencedMessage[] = [];
  private bufferIndex = 0;
  /** Messages before this time (and at or before `floorSeq`) are loaded. */
  private loadedToMs = 0;
  private floorSeq = 0;
  private playing = false;
  private speed = 1;
  private timer: NodeJS.Timeout | null = null;
  private lastFrameAtMs = 0;
  readonly startMs: number;
  readonly endMs: number;
  private incidents: Incident[];
  private readonly density: number[];
  /** Wall-clock milliseconds the latest frames took, for the benchmark. */
  readonly frameTimesMs: number[] = [];

  constructor(
    private readonly store: RecordingStore,
    private readonly origin: PlayerOrigin,
    private readonly clock: Clock,
    private readonly changed: () => void,
    incidents: Incident[],
  ) {
    const range = store.timeRange(origin.source);
    if (range === null) throw new Error('the recording holds nothing for this source');
    const firstKeyframe = store.keyframeTimes(origin.source).find((keyframe) => keyframe.full);
    this.startMs = Math.max(range.startMs, firstKeyframe?.atMs ?? range.startMs);
    this.endMs = range.endMs;
    this.incidents = incidents;
    this.density = store.eventDensity(origin.source, this.startMs, this.endMs, densityBuckets);
  }

  setIncidents(incidents: Incident[]): void {
    this.incidents = incidents;
  }

  /** Nearest keyframe at or before `atMs`, then every recorded message up to `atMs` through the reducer. */
  seek(atMs: number): void {
    const target = Math.min(Math.max(atMs, this.startMs), this.endMs);
    const chain = this.store.keyframeChain(this.origin.source, target);
    const keyframe = chain.at(-1);
    this.model = modelFromChain(chain);
    if (keyframe === undefined || this.model === null) throw new Error('the recording has no keyframe to start from');
    this.floorSeq = keyframe.seq;
    this.loadedToMs = keyframe.atMs;
    this.buffer = [];
    this.bufferIndex = 0;
    this.atMs = keyframe.atMs;
    this.advanceTo(Math.max(target, keyframe.atMs));
    this.lastFrameAtMs = this.clock.nowMs();
  }

  /** Applies every message with a time at or before `targetMs`. */
  advanceTo(targetMs: number): void {
    if (this.model === null) this.seek(targetMs);
    let model = this.model as ClusterModel;
    for (let round = 0; round < loadRoundsMax; round += 1) {
      while (this.bufferIndex < this.buffer.length) {
        const entry = this.buffer[this.bufferIndex] as SequencedMessage;
        if (timeOf(entry) > targetMs) break;
        model = reduce(model, entry.message);
        this.floorSeq = entry.seq;
        this.bufferIndex += 1;
      }
      if (this.bufferIndex < this.buffer.length || this.loadedToMs > targetMs) break;
      const next = this.store.nextDataMs(this.origin.source, this.loadedToMs);
      if (next === null || next > targetMs) {
        this.loadedToMs = Math.min(next ?? Number.POSITIVE_INFINITY, Math.max(this.loadedToMs, targetMs + 1e-3));
        break;
      }
      const toMs = Math.min(Math.floor(next / chunkWindowMs + 1) * chunkWindowMs, next + loadSpanMs);
      this.buffer = this.store.messagesBetween(this.origin.source, this.floorSeq, Math.max(next, this.loadedToMs), toMs);
      this.bufferIndex = 0;
      this.loadedToMs = toMs;
    }
    this.model = model;
    this.atMs = Math.min(Math.max(this.atMs, targetMs), this.endMs);
  }

  play(speed?: number): void {
    if (speed !== undefined) this.speed = speed;
    if (this.atMs >= this.endMs) this.seek(this.startMs);
    this.playing = true;
    this.lastFrameAtMs = this.clock.nowMs();
    if (this.timer === null) {
      this.timer = setInterval(() => this.frame(), playFrameIntervalMs);
      this.timer.unref();
    }
  }

  pause(): void {
    this.playing = false;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One frame of playback: advances by the wall time since the last frame times the speed. */
  frame(): void {
    if (!this.playing) return;
    const started = performance.now();
    const nowMs = this.clock.nowMs();
    this.advanceTo(this.atMs + (nowMs - this.lastFrameAtMs) * this.speed);
    this.lastFrameAtMs = nowMs;
    if (this.atMs >= this.endMs) this.pause();
    if (this.frameTimesMs.length >= 10_000) this.frameTimesMs.splice(0, 5_000);
    this.frameTimesMs.push(performance.now() - started);
    this.changed();
  }

  /** To the next recorded event, or back to the previous one. */
  step(direction: 1 | -1): void {
    this.pause();
    const eventMs = this.store.adjacentEventMs(this.origin.source, this.atMs, direction);
    if (eventMs === null) return;
    if (direction === 1) this.advanceTo(eventMs);
    else this.seek(eventMs);
  }

  /** To the start of the next (or previous) incident. */
  jumpToIncident(direction: 1 | -1): Incident | null {
    const sorted = [...this.incidents].sort((a, b) => a.startMs - b.startMs);
    const target = direction === 1 ? sorted.find((incident) => incident.startMs > this.atMs + 1) : sorted.reverse().find((incident) => incident.startMs < this.atMs - 1);
    if (target === undefined) return null;
    this.seek(target.startMs);
    return target;
  }

  currentModel(): ClusterModel | null {
    return this.model;
  }

  state(): ReplayState {
    return {
      ...this.origin,
      startMs: this.startMs,
      endMs: this.endMs,
      atMs: this.atMs,
      playing: this.playing,
      speed: this.speed,
      incidents: this.incidents,
      density: this.density,
      model: this.model === null ? null : summarizeForRenderer(this.model),
    };
  }

  close(): void {
    this.pause();
  }
}

function timeOf(entry: SequencedMessage): number {
  const message = entry.message;
  return message.kind === 'sample' ? message.sample.atMs : message.kind === 'event' ? message.event.atMs : message.atMs;
}
