/**
 * The replicated key-value state machine. It is engine-agnostic: the host
 * applies committed entries in index order and it never looks at the engine.
 *
 * Exactly-once: a session table keeps, per client, the last applied sequence
 * number and its result. A retry of that command answers the stored result
 * without applying again; an older sequence is refused. The table is bounded
 * by `sessionsMax`: the least recently used session is evicted, and a later
 * command of that client (sequence > 1 with no session) is refused with
 * `session_expired` rather than risk applying a retry twice.
 */
import { xxh3 } from '@node-rs/xxhash';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { describeIssues, err, ok, type Result } from '../../shared/protocol';
import {
  decodeCommand,
  kvClientIdLengthMax,
  kvKeyLengthMax,
  kvSequenceUnsessioned,
  kvValueLengthMax,
  type KvCommand,
  type KvOperation,
  type KvOutput,
  type KvResult,
} from './command';

export const kvSessionsMaxDefault = 4096;
export const kvSnapshotFormatVersion = 1;

interface Session {
  readonly lastSequence: number;
  readonly lastResult: KvResult;
}

export interface KvStateMachineOptions {
  /** How many client sessions are kept before the least recently used is evicted. */
  readonly sessionsMax: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

const ValueSchema = z.string().max(kvValueLengthMax);
const OutputSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('put') }),
  z.strictObject({ type: z.literal('get'), value: ValueSchema.nullable() }),
  z.strictObject({ type: z.literal('delete'), existed: z.boolean() }),
  z.strictObject({ type: z.literal('cas'), succeeded: z.boolean(), value: ValueSchema.nullable() }),
]);
const StoredResultSchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), data: OutputSchema }),
  z.strictObject({
    ok: z.literal(false),
    error: z.strictObject({ code: z.string().max(64), message: z.string().max(4096) }),
  }),
]);
const SnapshotSchema = z.strictObject({
  format: z.literal(kvSnapshotFormatVersion),
  appliedIndex: z.number().int().nonnegative(),
  entries: z.array(z.tuple([z.string().min(1).max(kvKeyLengthMax), ValueSchema])),
  /** In recency order, least recently used first, so eviction replays identically. */
  sessions: z.array(
    z.tuple([z.string().min(1).max(kvClientIdLengthMax), z.number().int().positive(), StoredResultSchema]),
  ),
});
type SnapshotRecord = z.infer<typeof SnapshotSchema>;

export class KvStateMachine {
  private readonly data = new Map<string, string>();
  /** Insertion order is recency order: a touched session is re-inserted at the end. */
  private readonly sessions = new Map<string, Session>();
  private appliedIndexValue = 0;

  constructor(private readonly options: KvStateMachineOptions = { sessionsMax: kvSessionsMaxDefault }) {
    if (!Number.isInteger(options.sessionsMax) || options.sessionsMax < 1) {
      throw new RangeError(`KvStateMachine: sessionsMax must be a positive integer, got ${options.sessionsMax}`);
    }
  }

  get appliedIndex(): number {
    return this.appliedIndexValue;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Applies the committed command at `index`, which must follow the applied
   * index directly: entries that are not commands (no-ops, membership
   * changes) go to `skip`, so a gap means an entry was lost on the way.
   */
  apply(index: number, command: KvCommand): KvResult {
    this.advanceTo(index);
    // Concurrent one-shot requests share no ordering, so they cannot share a session.
    if (command.sequence === kvSequenceUnsessioned) return ok(this.execute(command.operation));
    const session = this.sessions.get(command.clientId);
    if (session !== undefined) {
      if (command.sequence === session.lastSequence) return session.lastResult;
      if (command.sequence < session.lastSequence) {
        return err(
          'stale_sequence',
          `client ${command.clientId} sent sequence ${command.sequence} after ${session.lastSequence} was applied`,
        );
      }
    } else if (command.sequence > 1) {
      // Either the session was evicted or the client skipped sequence 1; both
      // would make a retry unsafe to apply.
      return err('session_expired', `client ${command.clientId} has no session; start again at sequence 1`);
    }
    const result = ok(this.execute(command.operation));
    this.remember(command.clientId, { lastSequence: command.sequence, lastResult: result });
    return result;
  }

  /** Applies an entry's bytes; a malformed command is answered as an error on every replica alike. */
  applyEncoded(index: number, bytes: Uint8Array): KvResult {
    const decoded = decodeCommand(bytes);
    if (!decoded.ok) {
      this.advanceTo(index);
      return decoded;
    }
    return this.apply(index, decoded.data);
  }

  /** Records that `index` held an entry that is not a command (no-op, membership change). */
  skip(index: number): void {
    this.advanceTo(index);
  }

  /** A read outside the log, for ReadIndex reads once `appliedIndex` reached the read index. */
  read(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    const record: SnapshotRecord = {
      format: kvSnapshotFormatVersion,
      appliedIndex: this.appliedIndexValue,
      entries: this.sortedEntries(),
      sessions: [...this.sessions].map(([clientId, session]) => [clientId, session.lastSequence, session.lastResult]),
    };
    return new Uint8Array(packr.pack(record));
  }

  /** Builds a state machine from snapshot bytes (a trust boundary: they come from disk or a peer). */
  static restore(bytes: Uint8Array, options?: KvStateMachineOptions): Result<KvStateMachine> {
    let decoded: unknown;
    try {
      decoded = packr.unpack(bytes);
    } catch (error) {
      return err('invalid_snapshot', `invalid snapshot: not msgpack (${error instanceof Error ? error.message : String(error)})`);
    }
    const parsed = SnapshotSchema.safeParse(decoded);
    if (!parsed.success) return err('invalid_snapshot', `invalid snapshot: ${describeIssues(parsed.error, 'snapshot')}`);
    const machine = new KvStateMachine(options);
    machine.appliedIndexValue = parsed.data.appliedIndex;
    for (const [key, value] of parsed.data.entries) machine.data.set(key, value);
    for (const [clientId, lastSequence, lastResult] of parsed.data.sessions) {
      machine.remember(clientId, { lastSequence, lastResult });
    }
    return ok(machine);
  }

  /**
   * A deterministic digest of the whole state (data, sessions, applied index),
   * for comparing replicas at the same applied index.
   */
  stateHash(): string {
    const canonical = packr.pack([
      this.appliedIndexValue,
      this.sortedEntries(),
      [...this.sessions].map(([clientId, session]) => [clientId, session.lastSequence, session.lastResult]),
    ]);
    return xxh3.xxh64(canonical).toString(16).padStart(16, '0');
  }

  /**
   * The state-divergence drill (agents started with --allow-drills only; the
   * host checks): changes one value in memory behind the log's back, as a
   * memory or software fault would, so the state-hash check has something to
   * find. Deterministic in `seed`; returns what it changed.
   */
  corruptForDrill(seed: number): string {
    const entries = this.sortedEntries();
    const victim = entries[seed % Math.max(1, entries.length)];
    if (victim === undefined) {
      this.data.set('~drill', `diverged-${seed}`);
      return 'inserted key ~drill, which no command wrote';
    }
    const [key, value] = victim;
    this.data.set(key, `${value}~drill`);
    return `changed the value of key ${key} without a command`;
  }

  private advanceTo(index: number): void {
    if (index !== this.appliedIndexValue + 1) {
      throw new RangeError(`KvStateMachine: apply at index ${index} after ${this.appliedIndexValue}; entries must be applied in order, without gaps`);
    }
    this.appliedIndexValue = index;
  }

  private execute(operation: KvOperation): KvOutput {
    switch (operation.type) {
      case 'put':
        this.data.set(operation.key, operation.value);
        return { type: 'put' };
      case 'get':
        return { type: 'get', value: this.read(operation.key) };
      case 'delete':
        return { type: 'delete', existed: this.data.delete(operation.key) };
      case 'cas':
        return this.compareAndSet(operation.key, operation.expected, operation.value);
    }
  }

  private compareAndSet(key: string, expected: string | null, value: string): KvOutput {
    const current = this.read(key);
    if (current !== expected) return { type: 'cas', succeeded: false, value: current };
    this.data.set(key, value);
    return { type: 'cas', succeeded: true, value };
  }

  private remember(clientId: string, session: Session): void {
    this.sessions.delete(clientId);
    this.sessions.set(clientId, session);
    while (this.sessions.size > this.options.sessionsMax) {
      const leastRecent = this.sessions.keys().next();
      if (leastRecent.done === true) break;
      this.sessions.delete(leastRecent.value);
    }
  }

  private sortedEntries(): [string, string][] {
    return [...this.data].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
  }
}
