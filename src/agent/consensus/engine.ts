/**
 * The one interface that Raft, Multi-Paxos and Zab implement (DESIGN.md,
 * "Consensus engines"). An engine is a deterministic state machine in the style
 * of etcd-io/raft: no clock, no timer, no randomness except the injected
 * `Random`, no socket, no file. The host (the agent runtime or the simulator)
 * drives it:
 *
 *   loop:
 *     engine.tick()                  every tick interval
 *     engine.step(message)           for each message received from a peer
 *     engine.propose(...)            for each client command
 *     if engine.hasReady():
 *       rd = engine.ready()
 *       persist rd.snapshot, rd.entries, rd.hardState (fsync)   -- before sending
 *       send rd.messages
 *       apply rd.committedEntries to the state machine, answer rd.readStates
 *       publish rd.events
 *       engine.advance(rd)
 *
 * At this interface the logical clock is `epoch` (a Raft term, a Paxos ballot
 * round, a Zab epoch); notions that belong to one protocol stay inside it.
 */
import type { EventBody, NodeId, NodeStatus, Result } from '../../shared/protocol';

/** A seeded source of randomness; the only one an engine may use. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] inclusive. */
  int(min: number, max: number): number;
}

export type EntryKind = 'normal' | 'noop' | 'config';

/** A log entry. `data` is opaque to the engine except for `config` entries. */
export interface Entry {
  readonly index: number;
  readonly epoch: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** Membership of the group: voters decide, learners only receive. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export type MembershipChange =
  | { readonly type: 'add-voter'; readonly node: NodeId }
  | { readonly type: 'add-learner'; readonly node: NodeId }
  | { readonly type: 'promote-learner'; readonly node: NodeId }
  | { readonly type: 'remove-node'; readonly node: NodeId };

/**
 * The state an engine must find again after a crash. Each engine defines its
 * own fields (Raft: term, vote, commit; Zab: acceptedEpoch, currentEpoch, ...);
 * storage persists it as an opaque plain record and hands it back unchanged.
 */
export type HardState = Readonly<Record<string, number | string | null>>;

export interface SnapshotMeta {
  readonly index: number;
  readonly epoch: number;
  readonly membership: Membership;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The serialized state machine at `meta.index`. */
  readonly data: Uint8Array;
}

/** Every engine message carries at least this envelope; the rest is engine-specific. */
export interface EngineMessage {
  readonly type: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly epoch: number;
}

/** A linearizable read became safe to serve once `index` is applied locally. */
export interface ReadState {
  readonly requestId: string;
  readonly index: number;
}

export interface Ready<M extends EngineMessage = EngineMessage> {
  /** Persist (atomically) when non-null. */
  readonly hardState: HardState | null;
  /**
   * False when `hardState` differs from the last one only in what the engine
   * can recover after a crash (Raft: the commit index); the host may then skip
   * writing it, as etcd's MustSync allows. True whenever the epoch or a vote changed.
   */
  readonly hardStateMustPersist: boolean;
  /**
   * Append to stable storage. If `entries[0].index` is at or below the last
   * stored index, the stored suffix from that index on is replaced.
   */
  readonly entries: readonly Entry[];
  /** An incoming snapshot to persist and to restore the state machine from. */
  readonly snapshot: Snapshot | null;
  /** Send only after the above is durable. */
  readonly messages: readonly M[];
  /** Apply in order; all are committed. */
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly events: readonly EventBody[];
}

export interface EngineOptions {
  readonly id: NodeId;
  /** Used only when storage holds no state yet (a fresh cluster). */
  readonly initialMembership: Membership;
  readonly random: Random;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly inflightAppendsMax: number;
  readonly appendBytesMax: number;
  /**
   * How many milliseconds the host lets pass between two `tick()` calls. An
   * engine has no clock; it uses this only to report durations it counts in
   * ticks (e.g. `lastContactMs`) in the model's milliseconds. Optional: each
   * engine documents its default.
   */
  readonly tickIntervalMs?: number;
}

/** What storage handed back on start: empty on a fresh node. */
export interface RestoredState {
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  /** Entries after the snapshot, in index order. */
  readonly entries: readonly Entry[];
}

export type ProposeResult = Result<{ index: number; epoch: number }>;

export interface ConsensusEngine<M extends EngineMessage = EngineMessage> {
  readonly id: NodeId;
  tick(): void;
  /** Feeds a message from a peer; a message the engine cannot use is dropped. */
  step(message: M): void;
  /** `nowMs` is the host's wall clock, kept only to report follower lag in ms. */
  propose(data: Uint8Array, nowMs: number): ProposeResult;
  /** Starts a linearizable read; it completes through `Ready.readStates`. */
  readIndex(requestId: string): Result<null>;
  transferLeadership(target: NodeId): Result<null>;
  changeMembership(change: MembershipChange): ProposeResult;
  /** Drops log entries up to `snapshot.meta.index`, which the host has persisted. */
  compact(snapshot: Snapshot): Result<null>;
  hasReady(): boolean;
  ready(): Ready<M>;
  advance(ready: Ready<M>): void;
  /** The engine-neutral status; host-level fields (integrity, process...) are filled by the host. */
  status(nowMs: number): EngineStatus;
}

export type EngineStatus = Pick<
  NodeStatus,
  | 'role'
  | 'epoch'
  | 'epochLabel'
  | 'leader'
  | 'lastIndex'
  | 'commitIndex'
  | 'appliedIndex'
  | 'voters'
  | 'learners'
  | 'followers'
  | 'transferringTo'
>;

export interface EngineFactory<M extends EngineMessage = EngineMessage> {
  readonly kind: 'raft' | 'paxos' | 'zab';
  create(options: EngineOptions, restored: RestoredState): ConsensusEngine<M>;
  /** Validates a message decoded from a peer frame before `step` sees it. */
  parseMessage(input: unknown): Result<M>;
}
