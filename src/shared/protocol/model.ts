import { z } from 'zod';

/**
 * The engine-neutral model (DESIGN.md, "One model for every engine"). Raft,
 * Multi-Paxos, Zab, etcd and ZooKeeper all report in these terms, so the
 * dashboard, the recorder and the alert rules never branch on the engine.
 */

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NodeIdSchema = z.string().regex(idPattern, 'expected a node id of letters, digits, ".", "_" or "-" (at most 64)');
export const ClusterIdSchema = z.string().regex(idPattern, 'expected a cluster id of letters, digits, ".", "_" or "-" (at most 64)');
export type NodeId = z.infer<typeof NodeIdSchema>;
export type ClusterId = z.infer<typeof ClusterIdSchema>;

export const EngineKindSchema = z.enum(['raft', 'paxos', 'zab', 'etcd', 'zookeeper']);
export type EngineKind = z.infer<typeof EngineKindSchema>;

export const RoleSchema = z.enum(['leader', 'follower', 'candidate', 'learner', 'observer', 'looking', 'offline']);
export type Role = z.infer<typeof RoleSchema>;

const count = z.number().int().nonnegative();
const index = z.number().int().nonnegative();
const durationMs = z.number().nonnegative();

/** How a follower's replication looks from the leader. */
export const ReplicationStateSchema = z.enum(['probe', 'replicate', 'snapshot', 'syncing', 'unknown']);

export const FollowerProgressSchema = z.object({
  nodeId: NodeIdSchema,
  voter: z.boolean(),
  state: ReplicationStateSchema,
  matchIndex: index,
  nextIndex: index,
  lagEntries: count,
  /** Age of the oldest entry the follower has not acknowledged; 0 when caught up. */
  lagMs: durationMs,
  /** Time since the leader last heard from the follower; null if never. */
  lastContactMs: durationMs.nullable(),
});
export type FollowerProgress = z.infer<typeof FollowerProgressSchema>;

export const ParityStateSchema = z.enum(['ok', 'degraded', 'rebuilding', 'none']);

export const IntegrityStatusSchema = z.object({
  bytesScrubbed: count,
  lastScrubAtMs: z.number().nonnegative().nullable(),
  scrubInProgress: z.boolean(),
  corruptionsFound: count,
  corruptionsRepaired: count,
  parity: ParityStateSchema,
  /** False when the node refuses to serve because it holds data it cannot verify. */
  serving: z.boolean(),
  reason: z.string().max(1024).nullable(),
});
export type IntegrityStatus = z.infer<typeof IntegrityStatusSchema>;

export const StorageStatusSchema = z.object({
  segments: count,
  walBytes: count,
  snapshotIndex: index,
  fsyncP99Ms: durationMs.nullable(),
});
export type StorageStatus = z.infer<typeof StorageStatusSchema>;

export const ProcessStatusSchema = z.object({
  pid: z.number().int().positive(),
  rssBytes: count,
  cpuPercent: z.number().nonnegative(),
  uptimeMs: durationMs,
});
export type ProcessStatus = z.infer<typeof ProcessStatusSchema>;

export const DrillKindSchema = z.enum(['pause', 'isolate', 'slow-disk', 'slow-network', 'corrupt']);
export type DrillKind = z.infer<typeof DrillKindSchema>;

export const NodeStatusSchema = z.object({
  nodeId: NodeIdSchema,
  clusterId: ClusterIdSchema,
  engine: EngineKindSchema,
  role: RoleSchema,
  /** Raft term, Paxos ballot round, Zab epoch. */
  epoch: count,
  /** The engine's own notation for display, e.g. a zxid `0x500000003`. */
  epochLabel: z.string().max(64),
  leader: NodeIdSchema.nullable(),
  lastIndex: index,
  commitIndex: index,
  appliedIndex: index,
  voters: z.array(NodeIdSchema).max(64),
  learners: z.array(NodeIdSchema).max(64),
  /** Filled on the leader only. */
  followers: z.array(FollowerProgressSchema).max(64),
  /** Set while a leadership transfer is in flight. */
  transferringTo: NodeIdSchema.nullable(),
  integrity: IntegrityStatusSchema.nullable(),
  storage: StorageStatusSchema.nullable(),
  process: ProcessStatusSchema.nullable(),
  drillsAllowed: z.boolean(),
  activeDrills: z.array(DrillKindSchema).max(8),
});
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

/** One status observation of one node at one time. */
export const StatusSampleSchema = z.object({
  atMs: z.number().nonnegative(),
  status: NodeStatusSchema,
});
export type StatusSample = z.infer<typeof StatusSampleSchema>;
