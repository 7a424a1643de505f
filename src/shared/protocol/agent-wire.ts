import { z } from 'zod';
import type { ClusterEvent } from './events';
import { ClusterIdSchema, EngineKindSchema, NodeIdSchema, StatusSampleSchema, type StatusSample } from './model';
import { resultSchema, type Result } from './result';

/**
 * The socket.io channel between an agent (server) and the hub (client).
 * The token travels in the handshake `auth`, never in an event.
 */

export const statusBatchSamplesMax = 64;

export const AgentHelloSchema = z.object({
  protocolVersion: z.literal(1),
  nodeId: NodeIdSchema,
  clusterId: ClusterIdSchema,
  engine: EngineKindSchema,
  /** What the presented token allows on this connection. */
  access: z.enum(['viewer', 'operator']),
  drillsAllowed: z.boolean(),
  bootId: z.string().min(1).max(64),
  /** How often the agent sends a status batch; the hub marks a link stale after 3 missed. */
  statusIntervalMs: z.number().int().min(10).max(60_000),
});
export type AgentHello = z.infer<typeof AgentHelloSchema>;

export const StatusBatchSchema = z.array(StatusSampleSchema).min(1).max(statusBatchSamplesMax);

export const AuthSchema = z.object({ token: z.string().min(1).max(512) });

const nodeId = NodeIdSchema;
const delayMs = z.number().int().min(0).max(60_000);

/** `state` damages the replica's in-memory key-value state (the fault is ignored), for the state-hash check. */
export const CorruptTargetSchema = z.enum(['segment', 'snapshot', 'state']);
export const CorruptFaultSchema = z.enum(['bit-flip', 'zero-sector', 'truncate', 'misdirect', 'stale']);

export const DrillSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('pause'), durationMs: z.number().int().min(1).max(600_000).nullable() }),
  z.strictObject({ kind: z.literal('resume') }),
  z.strictObject({ kind: z.literal('isolate'), peers: z.array(nodeId).max(64).nullable() }),
  z.strictObject({ kind: z.literal('heal') }),
  z.strictObject({ kind: z.literal('slow-disk'), delayMs }),
  z.strictObject({ kind: z.literal('slow-network'), delayMs }),
  z.strictObject({ kind: z.literal('corrupt'), target: CorruptTargetSchema, fault: CorruptFaultSchema, seed: z.number().int().nonnegative().optional() }),
]);
export type Drill = z.infer<typeof DrillSchema>;

/** Strict: a command with a field we do not know is refused, not silently trimmed. */
export const CommandSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('leadership:transfer'), to: nodeId }),
  z.strictObject({ type: z.literal('leadership:step-down') }),
  z.strictObject({ type: z.literal('member:add'), node: nodeId, peerAddress: z.string().min(3).max(255), learner: z.boolean() }),
  z.strictObject({ type: z.literal('member:remove'), node: nodeId }),
  z.strictObject({ type: z.literal('scrub:start') }),
  z.strictObject({ type: z.literal('drill:run'), drill: DrillSchema }),
]);
export type Command = z.infer<typeof CommandSchema>;

/** Commands that need an operator token; everything on this channel does, but kept explicit for audits. */
export const operatorCommands: ReadonlySet<Command['type']> = new Set(CommandSchema.options.map((o) => o.shape.type.value));

export type CommandAck = Result<{ detail: string }>;
export const CommandAckSchema = resultSchema(z.object({ detail: z.string().max(4096) }));

export interface AgentToHubEvents {
  'agent:hello': (hello: AgentHello) => void;
  'status:batch': (samples: StatusSample[]) => void;
  'cluster:event': (event: ClusterEvent) => void;
}

export interface HubToAgentEvents {
  'command:request': (command: unknown, ack: (answer: CommandAck) => void) => void;
}
