import { z } from 'zod';
import { NodeIdSchema, DrillKindSchema } from './model';

/**
 * Discrete cluster events. Names read `domain:verb`. Engines emit the same
 * names without the envelope (no time, no node: they have no clock), and the
 * agent stamps them.
 */
const nodeId = NodeIdSchema;
const epoch = z.number().int().nonnegative();
const text = z.string().max(1024);

export const EventBodySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('election:started'), epoch, candidate: nodeId, preVote: z.boolean() }),
  z.object({
    type: z.literal('leader:elected'),
    epoch,
    leader: nodeId,
    previousLeader: nodeId.nullable(),
    /** How long the cluster had no leader, as the reporting node saw it. */
    leaderlessTicks: z.number().int().nonnegative(),
    leaderlessMs: z.number().nonnegative().nullable(),
  }),
  z.object({ type: z.literal('leader:lost'), epoch, leader: nodeId, reason: text }),
  z.object({ type: z.literal('transfer:requested'), epoch, from: nodeId, to: nodeId }),
  z.object({ type: z.literal('transfer:completed'), epoch, from: nodeId, to: nodeId }),
  z.object({ type: z.literal('transfer:aborted'), epoch, from: nodeId, to: nodeId, reason: text }),
  z.object({ type: z.literal('transfer:refused'), epoch, to: nodeId, code: z.string().max(64), reason: text }),
  z.object({
    type: z.literal('membership:changed'),
    epoch,
    voters: z.array(nodeId).max(64),
    learners: z.array(nodeId).max(64),
    change: text,
  }),
  z.object({ type: z.literal('node:joined'), node: nodeId }),
  z.object({ type: z.literal('node:lost'), node: nodeId, reason: text }),
  z.object({
    type: z.literal('corruption:detected'),
    kind: z.enum(['torn-tail', 'corruption', 'misdirected', 'stale', 'checksum-mismatch', 'state-divergence']),
    file: z.string().max(512).nullable(),
    offset: z.number().int().nonnegative().nullable(),
    index: z.number().int().nonnegative().nullable(),
    detectedBy: z.enum(['read', 'scrub', 'recovery', 'state-hash', 'peer']),
    detail: text,
  }),
  z.object({
    type: z.literal('corruption:repaired'),
    file: z.string().max(512).nullable(),
    index: z.number().int().nonnegative().nullable(),
    repairedFrom: z.enum(['parity', 'peer', 'truncate', 'snapshot']),
    durationMs: z.number().nonnegative(),
    detail: text,
  }),
  z.object({
    type: z.literal('scrub:completed'),
    bytes: z.number().int().nonnegative(),
    durationMs: z.number().nonnegative(),
    corruptions: z.number().int().nonnegative(),
  }),
  z.object({ type: z.literal('drill:started'), drill: DrillKindSchema, detail: text }),
  z.object({ type: z.literal('drill:ended'), drill: DrillKindSchema, detail: text }),
]);
export type EventBody = z.infer<typeof EventBodySchema>;
export type EventType = EventBody['type'];

export const ClusterEventSchema = z.object({
  /** Unique per agent process: `${nodeId}:${bootId}:${sequence}`. */
  id: z.string().min(1).max(160),
  atMs: z.number().nonnegative(),
  nodeId: NodeIdSchema,
  body: EventBodySchema,
});
export type ClusterEvent = z.infer<typeof ClusterEventSchema>;
