import { z } from 'zod';
import { NodeIdSchema, ErrorInfoSchema, err, ok, describeIssues, type Result } from '../../shared/protocol';
import type { EngineMessage } from '../consensus/engine';

/**
 * What travels between agents on the peer transport: engine messages, and
 * client requests that a follower forwards to the leader with their answers.
 */
export const forwardedCommandBytesMax = 256 * 1024;

const ForwardRequestSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('kv'),
    command: z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'expected bytes').refine((bytes) => bytes.length <= forwardedCommandBytesMax, 'command too large'),
  }),
  z.object({ type: z.literal('transfer'), to: NodeIdSchema }),
]);
export type ForwardRequest = z.infer<typeof ForwardRequestSchema>;

const ForwardResultSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), data: z.unknown() }),
  z.object({ ok: z.literal(false), error: ErrorInfoSchema }),
]);

const requestId = z.number().int().nonnegative();

/**
 * Protocol-aware repair (integrity engine): a node that lost entries or its
 * snapshot asks a peer for exactly those, by index. The peer answers only with
 * entries it has committed and has verified on its own disk.
 */
export const RepairRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('entries'), fromIndex: z.number().int().nonnegative(), toIndex: z.number().int().nonnegative() }),
  z.object({ type: z.literal('snapshot'), indexMin: z.number().int().nonnegative() }),
]);
export type RepairRequest = z.infer<typeof RepairRequestSchema>;

const ControlEnvelopeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('forward'), from: NodeIdSchema, to: NodeIdSchema, id: requestId, request: ForwardRequestSchema }),
  z.object({ kind: z.literal('forward-reply'), from: NodeIdSchema, to: NodeIdSchema, id: requestId, result: ForwardResultSchema }),
  z.object({ kind: z.literal('repair-request'), from: NodeIdSchema, to: NodeIdSchema, id: requestId, request: RepairRequestSchema }),
  // The reply's data is parsed by the repair link, which knows what it asked for.
  z.object({ kind: z.literal('repair-reply'), from: NodeIdSchema, to: NodeIdSchema, id: requestId, result: ForwardResultSchema }),
  // A replica's key-value state hash at a state-check entry's index (integrity/state-check.ts): 16 hex digits of xxh64.
  z.object({ kind: z.literal('state-hash'), from: NodeIdSchema, to: NodeIdSchema, index: z.number().int().nonnegative(), hash: z.string().regex(/^[0-9a-f]{16}$/) }),
]);
export type ControlEnvelope = z.infer<typeof ControlEnvelopeSchema>;

export type PeerEnvelope<M extends EngineMessage> = { kind: 'engine'; to: string; from: string; message: M } | ControlEnvelope;

/** Builds the validator for one engine's envelopes, run on every decoded peer frame. */
export function envelopeParser<M extends EngineMessage>(parseMessage: (input: unknown) => Result<M>) {
  return (input: unknown): Result<PeerEnvelope<M>> => {
    if (typeof input !== 'object' || input === null) return err('invalid_payload', 'invalid envelope: not an object');
    const kind = (input as { kind?: unknown }).kind;
    if (kind === 'engine') {
      const message = parseMessage((input as { message?: unknown }).message);
      if (!message.ok) return message;
      return ok({ kind: 'engine', to: message.data.to, from: message.data.from, message: message.data });
    }
    const parsed = ControlEnvelopeSchema.safeParse(input);
    if (!parsed.success) return err('invalid_payload', `invalid envelope: ${describeIssues(parsed.error, 'envelope')}`);
    return ok(parsed.data);
  };
}
