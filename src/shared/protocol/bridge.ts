import { z } from 'zod';
import type { ClusterModelSummary, ClusterOverviewFacts, PreflightCheck } from '../model';
import { DrillSchema } from './agent-wire';
import { ClusterIdSchema, NodeIdSchema } from './model';
import type { Result } from './result';
import { replayRequestSchemas, type ReplayResponses, type ReplayState } from './replay';

/**
 * The narrow API between the hub and the renderer. The Electron preload exposes
 * it as `window.quorumscope` over IPC; web mode offers the same over socket.io.
 * The renderer never sees agent tokens: profiles come back redacted.
 */

export const EndpointSchema = z
  .string()
  .max(255)
  .regex(/^(https?:\/\/)?[A-Za-z0-9.[\]:_-]+:\d{1,5}$/, 'expected host:port or http(s)://host:port');

/** Per-cluster alert thresholds; absent fields keep the defaults. */
export const AlertThresholdsSchema = z.object({
  followerLagEntries: z.number().int().min(1).max(100_000_000).optional(),
  followerLagMs: z.number().int().min(10).max(3_600_000).optional(),
  leaderlessWarningAfterMs: z.number().int().min(100).max(600_000).optional(),
});
export type AlertThresholds = z.infer<typeof AlertThresholdsSchema>;

export const ProfileInputSchema = z.object({
  name: z.string().trim().min(1, 'name is required').max(80),
  endpoints: z.array(EndpointSchema).min(1, 'at least one agent endpoint is required').max(64),
  token: z.string().min(1, 'a token is required').max(512),
  thresholds: AlertThresholdsSchema.optional(),
});
export type ProfileInput = z.infer<typeof ProfileInputSchema>;

/** An edit: every field optional; an absent token keeps the stored one (the renderer never had it). */
export const ProfileUpdateSchema = z.object({
  id: z.string().min(1).max(64),
  name: ProfileInputSchema.shape.name.optional(),
  endpoints: ProfileInputSchema.shape.endpoints.optional(),
  token: ProfileInputSchema.shape.token.optional(),
  thresholds: AlertThresholdsSchema.optional(),
});
export type ProfileUpdate = z.infer<typeof ProfileUpdateSchema>;

export const ProfileSchema = ProfileInputSchema.extend({ id: z.string().min(1).max(64) });
export type Profile = z.infer<typeof ProfileSchema>;

/** What the renderer may see of a profile. */
export type ProfileSummary = Omit<Profile, 'token'> & { hasToken: boolean };

export const AppInfoSchema = z.object({
  version: z.string(),
  mode: z.enum(['desktop', 'web']),
  platform: z.string(),
});
export type AppInfo = z.infer<typeof AppInfoSchema>;

export interface LinkSummary {
  endpoint: string;
  state: 'connecting' | 'connected' | 'stale' | 'unreachable' | 'refused';
  nodeId: string | null;
  detail: string | null;
}

/** One operator action, as the audit log keeps it. */
export interface AuditEntry {
  id: string;
  atMs: number;
  /** The operating-system user and host that ran the app. */
  who: string;
  profile: string;
  action: 'transfer' | 'drill' | 'scrub';
  from: string | null;
  to: string;
  outcome: 'completed' | 'failed' | 'refused';
  durationMs: number;
  detail: string;
}

/** A manual failover while it runs and once it ended. */
export interface FailoverProgress {
  target: string;
  from: string | null;
  phase: 'in-progress' | 'succeeded' | 'failed';
  progress: string | null;
  outcome: string | null;
  startedAtMs: number;
}

export interface ClusterSummary {
  profileId: string;
  name: string;
  clusterId: string | null;
  links: LinkSummary[];
  /** What the profile's token allows, once an agent has said. */
  access: 'viewer' | 'operator' | null;
  /** Health, leader and alerts of every cluster, on every push. */
  overview: ClusterOverviewFacts | null;
  /** The full view, only for the cluster this window focuses (see 'view:focus'). */
  model: ClusterModelSummary | null;
  failover: FailoverProgress | null;
  /** The latest operator actions on this cluster, newest last. */
  audit: AuditEntry[];
}

/** Pushed to the renderer, batched (at most 30 per second). */
export interface HubSnapshot {
  atMs: number;
  clusters: ClusterSummary[];
  /** Set while replaying a recording: the renderer shows this instead of the live clusters. */
  replay: ReplayState | null;
}

/** Requests the renderer may make, with the schema of their argument. */
export const bridgeRequestSchemas = {
  'app:info': z.null(),
  'profiles:list': z.null(),
  'profiles:add': ProfileInputSchema,
  'profiles:remove': z.object({ id: z.string().min(1).max(64) }),
  'profiles:update': ProfileUpdateSchema,
  'cluster:connect': z.object({ profileId: z.string().min(1).max(64) }),
  'cluster:disconnect': z.object({ profileId: z.string().min(1).max(64) }),
  'alerts:acknowledge': z.object({ profileId: z.string().min(1).max(64), alertId: z.string().min(1).max(200) }),
  'alerts:mute': z.object({
    profileId: z.string().min(1).max(64),
    alertId: z.string().min(1).max(200),
    durationMs: z.number().int().min(0).max(24 * 60 * 60 * 1000),
  }),
  'failover:preflight': z.object({ profileId: z.string().min(1).max(64), target: NodeIdSchema }),
  'failover:start': z.object({ profileId: z.string().min(1).max(64), target: NodeIdSchema }),
  'drill:run': z.object({ profileId: z.string().min(1).max(64), nodeId: NodeIdSchema, drill: DrillSchema }),
  'node:scrub': z.object({ profileId: z.string().min(1).max(64), nodeId: NodeIdSchema }),
  /** Which cluster this window shows in full; null for the first connected one. */
  'view:focus': z.object({ profileId: z.string().min(1).max(64).nullable() }),
  /** Recorder, incidents and player: see replay.ts. */
  ...replayRequestSchemas,
} as const;
export type BridgeRequestName = keyof typeof bridgeRequestSchemas;
export type BridgeRequestArg<N extends BridgeRequestName> = z.infer<(typeof bridgeRequestSchemas)[N]>;

export interface BridgeResponses extends ReplayResponses {
  'app:info': AppInfo;
  'profiles:list': ProfileSummary[];
  'profiles:add': ProfileSummary;
  'profiles:remove': { removed: boolean };
  'profiles:update': ProfileSummary;
  'cluster:connect': ClusterSummary;
  'cluster:disconnect': { disconnected: boolean };
  'alerts:acknowledge': { acknowledged: boolean };
  'alerts:mute': { muted: boolean };
  'failover:preflight': { target: string; checks: PreflightCheck[] };
  'failover:start': AuditEntry;
  'drill:run': { detail: string };
  'node:scrub': { detail: string };
  'view:focus': { profileId: string | null };
}

export function isBridgeRequestName(name: unknown): name is BridgeRequestName {
  return typeof name === 'string' && Object.hasOwn(bridgeRequestSchemas, name);
}

export const ClusterRefSchema = z.object({ clusterId: ClusterIdSchema });

/** What the desktop shell's menu asks of the renderer. Web mode has no menu and never sends one. */
export type AppCommand = { type: 'open-connect' } | { type: 'toggle-theme' } | { type: 'open-failover' };
const appCommandTypes: ReadonlySet<string> = new Set(['open-connect', 'toggle-theme', 'open-failover']);
export function isAppCommand(value: unknown): value is AppCommand {
  return typeof value === 'object' && value !== null && appCommandTypes.has((value as { type?: unknown }).type as string);
}

/** The API object the renderer gets, whichever transport carries it. */
export interface QuorumscopeApi {
  request<N extends BridgeRequestName>(name: N, arg: BridgeRequestArg<N>): Promise<Result<BridgeResponses[N]>>;
  /** Subscribes to hub snapshots; returns the function that unsubscribes. */
  onSnapshot(listener: (snapshot: HubSnapshot) => void): () => void;
  /** Subscribes to menu commands; returns the function that unsubscribes. */
  onCommand(listener: (command: AppCommand) => void): () => void;
}
