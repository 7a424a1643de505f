import { z } from 'zod';
import type { ClusterModelSummary } from '../model';

/**
 * Recorder, incidents and player, as the renderer sees them. The hub records
 * every message it reduces; the player replays them through the same reducer.
 */

export const IncidentSeveritySchema = z.enum(['critical', 'warning', 'info']);
export type IncidentSeverity = z.infer<typeof IncidentSeveritySchema>;
export const IncidentTriggerSchema = z.enum(['failover', 'lost-quorum', 'split-brain', 'corruption', 'lag-spike', 'bookmark']);
export type IncidentTrigger = z.infer<typeof IncidentTriggerSchema>;

export const IncidentSchema = z.object({
  id: z.string().min(1).max(64),
  /** The recorded source (one per connected profile). */
  source: z.string().min(1).max(64),
  sourceName: z.string().max(200),
  trigger: IncidentTriggerSchema,
  title: z.string().max(200),
  severity: IncidentSeveritySchema,
  notes: z.string().max(10_000),
  /** When the first trigger happened. */
  triggerAtMs: z.number().nonnegative(),
  /** The time range to watch: pre-roll before the first trigger, post-roll after the last. */
  startMs: z.number().nonnegative(),
  endMs: z.number().nonnegative(),
});
export type Incident = z.infer<typeof IncidentSchema>;

export const RecorderSettingsSchema = z.object({
  /** Older recordings are deleted; at least an hour, at most a year. */
  retentionAgeMs: z.number().int().min(60 * 60_000).max(366 * 24 * 60 * 60_000),
  /** The recording database is kept under this size; at least 16 MiB. */
  retentionBytesMax: z.number().int().min(16 * 1024 * 1024).max(1024 ** 4),
});
export type RecorderSettings = z.infer<typeof RecorderSettingsSchema>;

export interface RecorderStatus extends RecorderSettings {
  path: string;
  sizeBytes: number;
  sources: RecordingSource[];
}

export interface RecordingSource {
  source: string;
  name: string;
  clusterId: string | null;
  startMs: number | null;
  endMs: number | null;
}

export const replaySpeeds = [0.25, 0.5, 1, 2, 5, 10, 30, 60] as const;
export const ReplaySpeedSchema = z.number().min(0.25).max(60);

/** What the renderer shows while replaying; null in the live view. */
export interface ReplayState {
  /** 'store' replays the app's own recording; 'file' a .qsrec opened from disk. */
  origin: 'store' | 'file';
  /** A name for the indicator: the file name or the profile's name. */
  label: string;
  source: string;
  sourceName: string;
  startMs: number;
  endMs: number;
  atMs: number;
  playing: boolean;
  speed: number;
  incidents: Incident[];
  /** Events per bucket across [startMs, endMs], for the scrubber. */
  density: number[];
  model: ClusterModelSummary | null;
}

const sourceRef = z.string().min(1).max(64);
/** A .qsrec sent by the renderer (drag-and-drop in web mode); base64 keeps it one JSON string. */
export const recordingBase64CharsMax = 96 * 1024 * 1024;

export const replayRequestSchemas = {
  'recorder:status': z.null(),
  'recorder:settings': RecorderSettingsSchema,
  'incidents:list': z.object({ source: sourceRef.optional() }),
  'incidents:edit': z.object({
    id: z.string().min(1).max(64),
    title: z.string().trim().min(1).max(200).optional(),
    severity: IncidentSeveritySchema.optional(),
    notes: z.string().max(10_000).optional(),
  }),
  'incidents:bookmark': z.object({ profileId: sourceRef, title: z.string().trim().min(1).max(200).optional(), notes: z.string().max(10_000).optional() }),
  'recording:export': z.union([
    z.object({ incidentId: z.string().min(1).max(64) }),
    z.object({ source: sourceRef, fromMs: z.number().nonnegative(), toMs: z.number().nonnegative() }),
  ]),
  'replay:start': z.object({ source: sourceRef, atMs: z.number().nonnegative().optional() }),
  'replay:open': z.union([z.object({ path: z.string().min(1).max(4096) }), z.object({ fileName: z.string().min(1).max(255), base64: z.string().max(recordingBase64CharsMax) })]),
  'replay:seek': z.object({ atMs: z.number().nonnegative() }),
  'replay:play': z.object({ speed: ReplaySpeedSchema.optional() }),
  'replay:pause': z.null(),
  'replay:step': z.object({ direction: z.union([z.literal(1), z.literal(-1)]) }),
  'replay:incident': z.object({ direction: z.union([z.literal(1), z.literal(-1)]) }),
  'replay:stop': z.null(),
} as const;

export interface ReplayResponses {
  'recorder:status': RecorderStatus;
  'recorder:settings': RecorderStatus;
  'incidents:list': Incident[];
  'incidents:edit': Incident;
  'incidents:bookmark': Incident;
  'recording:export': { path: string; bytes: number };
  'replay:start': ReplayState;
  'replay:open': ReplayState;
  'replay:seek': ReplayState;
  'replay:play': ReplayState;
  'replay:pause': ReplayState;
  'replay:step': ReplayState;
  'replay:incident': ReplayState;
  'replay:stop': { stopped: boolean };
}
