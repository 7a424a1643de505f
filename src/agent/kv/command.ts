/**
 * Commands of the replicated key-value store and their binary encoding.
 *
 * A command travels inside a log entry, so every replica decodes the same bytes;
 * the decoder is a trust boundary (client requests, peer frames, entries read
 * back from disk) and validates with zod before anything else sees the value.
 * Each command carries its client's id and a per-client sequence number so that
 * a retried command is applied once (Raft thesis §6.3).
 */
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { describeIssues, err, ok, type Result } from '../../shared/protocol';

/** The first byte of every encoded command; bump it when the layout changes. */
export const kvCommandFormatVersion = 1;
/** The sequence number of a command that belongs to no client session. */
export const kvSequenceUnsessioned = 0;
export const kvKeyLengthMax = 256;
export const kvValueLengthMax = 64 * 1024;
export const kvClientIdLengthMax = 64;
/** Larger than any valid command (key + value + expected value + envelope). */
export const kvCommandBytesMax = 2 * kvValueLengthMax + kvKeyLengthMax + 1024;

const KeySchema = z.string().min(1).max(kvKeyLengthMax);
const ValueSchema = z.string().max(kvValueLengthMax);

export const KvOperationSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('put'), key: KeySchema, value: ValueSchema }),
  z.strictObject({ type: z.literal('get'), key: KeySchema }),
  z.strictObject({ type: z.literal('delete'), key: KeySchema }),
  /** Sets `value` only if the current value equals `expected` (null: the key is absent). */
  z.strictObject({ type: z.literal('cas'), key: KeySchema, expected: ValueSchema.nullable(), value: ValueSchema }),
]);
export type KvOperation = z.infer<typeof KvOperationSchema>;

export const KvCommandSchema = z.strictObject({
  clientId: z.string().min(1).max(kvClientIdLengthMax),
  /**
   * Starts at 1 and grows by one per new command of the client; a retry reuses it.
   * 0 marks a command outside any session (a one-shot request with no retry
   * identity): it is applied as it comes and nothing is remembered.
   */
  sequence: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  operation: KvOperationSchema,
});
export type KvCommand = z.infer<typeof KvCommandSchema>;

/** What an applied operation answers. */
export type KvOutput =
  | { readonly type: 'put' }
  | { readonly type: 'get'; readonly value: string | null }
  | { readonly type: 'delete'; readonly existed: boolean }
  /** `value` is the value after the operation, whether or not it succeeded. */
  | { readonly type: 'cas'; readonly succeeded: boolean; readonly value: string | null };

export type KvResult = Result<KvOutput>;

// Plain msgpack maps (no msgpackr records) so that other languages can read the log.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Builds the operation with its fields in one fixed order so equal commands encode to equal bytes. */
function canonicalOperation(operation: KvOperation): KvOperation {
  switch (operation.type) {
    case 'put':
      return { type: 'put', key: operation.key, value: operation.value };
    case 'get':
      return { type: 'get', key: operation.key };
    case 'delete':
      return { type: 'delete', key: operation.key };
    case 'cas':
      return { type: 'cas', key: operation.key, expected: operation.expected, value: operation.value };
  }
}

/**
 * The first and only byte of a state-check entry: a byte no command format
 * uses, so no client command can ever look like one. The state machine treats
 * the entry as a no-op; the host hashes the state when it applies it, so every
 * replica hashes at the same index (integrity/state-check.ts).
 */
export const kvStateCheckTag = 0xff;

export function encodeStateCheck(): Uint8Array {
  return Uint8Array.of(kvStateCheckTag);
}

export function isStateCheck(bytes: Uint8Array): boolean {
  return bytes.length === 1 && bytes[0] === kvStateCheckTag;
}

export function encodeCommand(command: KvCommand): Uint8Array {
  const body = packr.pack({
    clientId: command.clientId,
    sequence: command.sequence,
    operation: canonicalOperation(command.operation),
  });
  // msgpackr hands back a view into its reusable buffer; copy it out.
  const bytes = new Uint8Array(body.length + 1);
  bytes[0] = kvCommandFormatVersion;
  bytes.set(body, 1);
  return bytes;
}

/** Decodes and validates untrusted bytes; the error names what is wrong. */
export function decodeCommand(bytes: Uint8Array): Result<KvCommand> {
  if (bytes.length === 0) return err('invalid_command', 'invalid command: empty input');
  if (bytes.length > kvCommandBytesMax) {
    return err('invalid_command', `invalid command: ${bytes.length} bytes exceeds the limit of ${kvCommandBytesMax}`);
  }
  if (bytes[0] !== kvCommandFormatVersion) {
    return err('invalid_command', `invalid command: unknown format version ${bytes[0]} (expected ${kvCommandFormatVersion})`);
  }
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes.subarray(1));
  } catch (error) {
    return err('invalid_command', `invalid command: not msgpack (${error instanceof Error ? error.message : String(error)})`);
  }
  const parsed = KvCommandSchema.safeParse(decoded);
  if (!parsed.success) return err('invalid_command', `invalid command: ${describeIssues(parsed.error, 'command')}`);
  return ok(parsed.data);
}
