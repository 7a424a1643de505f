/**
 * Raft's peer messages. The schemas are the source of truth: the types are
 * inferred from them, so the validator that runs at the trust boundary
 * (`parseRaftMessage`, on every frame decoded from a peer) cannot drift from
 * what the engine steps.
 *
 * `epoch` is the Raft term. A pre-vote request carries the term the sender
 * would campaign in (its term + 1), and a granted pre-vote response echoes it,
 * as in etcd-io/raft; neither changes anyone's term.
 */
import { z } from 'zod';
import { NodeIdSchema, describeIssues, err, ok, type Result } from '../../../shared/protocol';
import { MembershipSchema, decodeConfigEntry } from './membership';

/** Bounds of a decoded message; senders stay far below them (`appendBytesMax`). */
export const messageEntriesMax = 65_536;
export const entryBytesMax = 8 * 1024 * 1024;
export const snapshotBytesMax = 256 * 1024 * 1024;
export const requestIdLengthMax = 128;

const nodeId = NodeIdSchema;
const term = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const index = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

function bytes(bytesMax: number) {
  return z.custom<Uint8Array>((value) => value instanceof Uint8Array && value.byteLength <= bytesMax, {
    message: `expected bytes (a Uint8Array of at most ${bytesMax} bytes)`,
  });
}

export const EntrySchema = z
  .object({
    index: index.min(1),
    epoch: term,
    kind: z.enum(['normal', 'noop', 'config']),
    data: bytes(entryBytesMax),
  })
  .superRefine((entry, context) => {
    if (entry.kind !== 'config') return;
    const decoded = decodeConfigEntry(entry.data);
    if (!decoded.ok) context.addIssue({ code: 'custom', path: ['data'], message: decoded.error.message });
  });

export const SnapshotSchema = z.object({
  meta: z.object({ index, epoch: term, membership: MembershipSchema }),
  data: bytes(snapshotBytesMax),
});

const envelope = { from: nodeId, to: nodeId, epoch: term };

export const AppendMessageSchema = z
  .object({
    type: z.literal('append'),
    ...envelope,
    /** The index and term of the entry just before `entries` (§5.3 consistency check). */
    previousIndex: index,
    previousTerm: term,
    entries: z.array(EntrySchema).max(messageEntriesMax),
    commit: index,
  })
  .superRefine((message, context) => {
    // Entries must follow `previousIndex` without a gap, so the follower's
    // log-matching check covers every entry it appends.
    message.entries.forEach((entry, position) => {
      if (entry.index !== message.previousIndex + 1 + position) {
        context.addIssue({ code: 'custom', path: ['entries', position, 'index'], message: 'entries must be contiguous after previousIndex' });
      }
    });
  });

export const AppendResponseMessageSchema = z.object({
  type: z.literal('append-response'),
  ...envelope,
  /** Accepted: the follower's log matches the leader's up to here. Rejected: the `previousIndex` refused. */
  index,
  reject: z.boolean(),
  /** On reject (§5.3 optimization): the term of the conflicting entry, 0 if the follower's log is too short. */
  hintTerm: term,
  /** On reject: the first index the follower holds of `hintTerm`, or its last index + 1 if too short. */
  hintIndex: index,
});

export const HeartbeatMessageSchema = z.object({
  type: z.literal('heartbeat'),
  ...envelope,
  commit: index,
  /** A ReadIndex round this heartbeat confirms leadership for; 0 for none. */
  readContext: index,
});

export const HeartbeatResponseMessageSchema = z.object({
  type: z.literal('heartbeat-response'),
  ...envelope,
  readContext: index,
});

const voteRequest = {
  ...envelope,
  lastIndex: index,
  lastTerm: term,
  /** Set when a leadership transfer triggered the campaign: it bypasses the leader lease. */
  transfer: z.boolean(),
};

export const VoteMessageSchema = z.object({ type: z.literal('vote'), ...voteRequest });
export const PreVoteMessageSchema = z.object({ type: z.literal('pre-vote'), ...voteRequest });
export const VoteResponseMessageSchema = z.object({ type: z.literal('vote-response'), ...envelope, reject: z.boolean() });
export const PreVoteResponseMessageSchema = z.object({ type: z.literal('pre-vote-response'), ...envelope, reject: z.boolean() });

export const SnapshotMessageSchema = z.object({ type: z.literal('snapshot'), ...envelope, snapshot: SnapshotSchema });
export const TimeoutNowMessageSchema = z.object({ type: z.literal('timeout-now'), ...envelope });

export const ReadIndexMessageSchema = z.object({
  type: z.literal('read-index'),
  ...envelope,
  requestId: z.string().min(1).max(requestIdLengthMax),
});

export const ReadIndexResponseMessageSchema = z.object({
  type: z.literal('read-index-response'),
  ...envelope,
  requestId: z.string().min(1).max(requestIdLengthMax),
  index,
});

export const RaftMessageSchema = z.discriminatedUnion('type', [
  AppendMessageSchema,
  AppendResponseMessageSchema,
  HeartbeatMessageSchema,
  HeartbeatResponseMessageSchema,
  VoteMessageSchema,
  VoteResponseMessageSchema,
  PreVoteMessageSchema,
  PreVoteResponseMessageSchema,
  SnapshotMessageSchema,
  TimeoutNowMessageSchema,
  ReadIndexMessageSchema,
  ReadIndexResponseMessageSchema,
]);

export type RaftMessage = z.infer<typeof RaftMessageSchema>;
export type RaftMessageType = RaftMessage['type'];
export type AppendMessage = z.infer<typeof AppendMessageSchema>;
export type AppendResponseMessage = z.infer<typeof AppendResponseMessageSchema>;
export type HeartbeatMessage = z.infer<typeof HeartbeatMessageSchema>;
export type HeartbeatResponseMessage = z.infer<typeof HeartbeatResponseMessageSchema>;
export type VoteMessage = z.infer<typeof VoteMessageSchema>;
export type PreVoteMessage = z.infer<typeof PreVoteMessageSchema>;
export type SnapshotMessage = z.infer<typeof SnapshotMessageSchema>;
export type ReadIndexMessage = z.infer<typeof ReadIndexMessageSchema>;
export type ReadIndexResponseMessage = z.infer<typeof ReadIndexResponseMessageSchema>;

/** Validates an untrusted decoded object; the error names the offending field. */
export function parseRaftMessage(input: unknown): Result<RaftMessage> {
  const parsed = RaftMessageSchema.safeParse(input);
  if (parsed.success) return ok(parsed.data);
  return err('invalid_message', `invalid raft message: ${describeIssues(parsed.error, 'message')}`);
}
