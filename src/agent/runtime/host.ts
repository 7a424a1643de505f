import { spawn } from 'node:child_process';
import {
  err,
  ok,
  type ClusterEvent,
  type Command,
  type CommandAck,
  type DrillKind,
  type EventBody,
  type Err,
  type NodeStatus,
  type Result,
} from '../../shared/protocol';
import type { Clock, Logger } from '../../shared/logger';
import type { ConsensusEngine, EngineMessage, Entry, Ready, Snapshot } from '../consensus/engine';
import { decodeCommand, encodeCommand, encodeStateCheck, isStateCheck, kvSequenceUnsessioned, type KvOperation, type KvOutput } from '../kv/command';
import { KvStateMachine } from '../kv/state-machine';
import type { NodeMetrics } from '../api/metrics';
import type { Peer } from './config';
import type { ControlEnvelope, ForwardRequest, PeerEnvelope, RepairRequest } from './envelope';
import { repairPageBytesMax, type IntegrityEngine } from '../integrity/engine';
import { StateHashTally, type StateCheckVerdict } from '../integrity/state-check';
import type { SealedSegmentInfo } from '../storage/wal';
import type { TransportRepairLink } from './repair-link';
import type { ClientSession, NodeService } from './service';

/** The transport as the host uses it; the TCP transport implements it. */
export interface PeerTransport<T> {
  send(to: string, message: T): void;
  onMessage(handler: (message: T) => void): void;
  addPeer(peer: Peer): void;
  removePeer(id: string): void;
  isolate(peers: readonly string[] | null): void;
  heal(): void;
  setDelayMs(delayMs: number): void;
  close(): Promise<void>;
}

/** Durable storage as the host uses it. */
export interface HostStorage {
  persist(ready: Pick<Ready, 'hardState' | 'entries' | 'snapshot'>): Promise<Result<null>>;
  saveSnapshot(snapshot: Snapshot): Promise<Result<null>>;
  setFsyncDelayMs(delayMs: number): void;
  rewriteSnapshot(snapshot: Snapshot): Promise<Result<null>>;
  readEntries(fromIndex: number, toIndex: number, bytesMax: number): Promise<Result<Entry[]>>;
  readNewestSnapshotBytes(): Promise<Result<{ index: number; bytes: Buffer } | null>>;
  sealedSegments(): SealedSegmentInfo[];
  stats(): { fsyncCount: number; fsyncDurationsMs: readonly number[]; fsyncDurationMsP99: number | null; wal: { segmentCount: number; segmentBytes: number }; snapshotIndex: number | null };
  close(): Promise<void>;
}

export interface HostOptions<M extends EngineMessage> {
  nodeId: string;
  clusterId: string;
  engine: ConsensusEngine<M>;
  engineKind: 'raft';
  storage: HostStorage;
  /** Verifies, scrubs and repairs storage; while it says the node may not serve, the engine neither ticks nor hears peers. */
  integrity: IntegrityEngine;
  repairLink: TransportRepairLink;
  transport: PeerTransport<PeerEnvelope<M>>;
  kv: KvStateMachine;
  /** Applied index and its epoch the state machine was restored to (the snapshot's). */
  appliedIndex: number;
  appliedEpoch: number;
  snapshotIndex: number;
  clock: Clock;
  logger: Logger;
  metrics: NodeMetrics;
  bootId: string;
  drillsAllowed: boolean;
  tickIntervalMs: number;
  electionTimeoutTicks: number;
  snapshotEntries: number;
  /** The leader proposes a state-check entry this often (0: never by time). */
  stateCheckIntervalMs: number;
  /** ...or once this many entries were applied since the last check (0: never by count). */
  stateCheckEntries: number;
}

/** Limits on work the host holds for clients. */
export const pendingProposalsMax = 10_000;
export const pendingReadsMax = 10_000;
export const pendingForwardsMax = 10_000;
export const requestTimeoutMs = 5_000;
/** A transfer target further behind than this is refused rather than caught up. */
export const transferLagEntriesMax = 1_000;
export const pauseDurationMsDefault = 10_000;
/** Refusals that mean "leadership is changing": nothing was proposed, so the write may go to the next leader. */
const leaderChangeCodes: ReadonlySet<string> = new Set(['transferring', 'not_leader', 'no_leader']);
/** How many leaders a write follows before it gives up and tells the client. */
const replicateAttemptsMax = 3;
/** A write waits for a new leader at most this long: two election timeouts cover a transfer or a failover. */
function leaderChangeWaitMsMax(options: { electionTimeoutTicks: number; tickIntervalMs: number }): number {
  return Math.min(requestTimeoutMs, 4 * options.electionTimeoutTicks * options.tickIntervalMs);
}

interface Waiter<T> {
  resolve(result: Result<T>): void;
  timer: NodeJS.Timeout;
}

interface PendingProposal extends Waiter<{ index: number; output: KvOutput }> {
  epoch: number;
}

interface PendingRead extends Waiter<{ value: string | null; index: number }> {
  key: string;
  /** Set once the leader has confirmed the read index. */
  index: number | null;
}

function timeoutError(what: string): Result<never> {
  return err('timeout', `${what} did not complete within ${requestTimeoutMs} ms; its outcome is unknown`);
}

/**
 * Drives one consensus engine (the loop in consensus/engine.ts): ticks it,
 * feeds it peer messages and client commands, persists before it sends,
 * applies committed entries to the key-value store, and answers clients.
 * It is the node's `NodeService` for the HTTP API and telemetry.
 */
export class NodeHost<M extends EngineMessage> implements NodeService {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly engine: 'raft';
  readonly drillsAllowed: boolean;
  readonly bootId: string;

  private readonly consensus: ConsensusEngine<M>;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly forwards = new Map<number, Waiter<unknown>>();
  private readonly eventListeners = new Set<(event: ClusterEvent) => void>();
  private readonly activeDrills = new Set<DrillKind>();
  private tickTimer: NodeJS.Timeout | null = null;
  private processing = false;
  private stopped = false;
  private fatal: string | null = null;
  private appliedIndex: number;
  private snapshotIndex: number;
  private lastLeader: string | null = null;
  private eventSequence = 0;
  private nextRequestId = 1;
  private lastFsyncCount = 0;
  private cpuSample = { atMs: 0, usage: process.cpuUsage() };
  private cpuPercent = 0;
  private readonly startedAtMs: number;
  private readonly snapshotting = { active: false };
  private kv: KvStateMachine;
  private lastAppliedEpoch: number;
  private readonly stateHashes = new StateHashTally();
  /** Minority members already reported per check index, so each finding is raised once; pruned with the tally. */
  private readonly stateFindingsReported = new Map<number, Set<string>>();
  private stateCheckTimer: NodeJS.Timeout | null = null;
  /** The index of this leader's state-check proposal not applied yet: one in flight at a time. */
  private stateCheckProposedIndex: number | null = null;
  private lastStateCheckIndex = 0;

  constructor(private readonly options: HostOptions<M>) {
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.engine = options.engineKind;
    this.drillsAllowed = options.drillsAllowed;
    this.bootId = options.bootId;
    this.consensus = options.engine;
    this.appliedIndex = options.appliedIndex;
    this.snapshotIndex = options.snapshotIndex;
    this.kv = options.kv;
    this.lastAppliedEpoch = options.appliedEpoch;
    this.startedAtMs = options.clock.nowMs();
    this.cpuSample = { atMs: this.startedAtMs, usage: process.cpuUsage() };
    options.transport.onMessage((envelope) => this.onPeerMessage(envelope));
    options.integrity.onEvent((body) => this.publish(body));
    options.integrity.setPeerLink(options.repairLink);
    options.integrity.attach({ sealedSegments: () => options.storage.sealedSegments(), rewriteSnapshot: () => this.rewriteSnapshot() });
  }

  start(): void {
    this.options.integrity.startBackgroundScrub();
    this.tickTimer = setInterval(() => {
      // A node holding data it cannot read must not vote or campaign: its engine stands still until repair (PAR, FAST 2018).
      if (!this.options.integrity.serving()) return;
      this.consensus.tick();
      this.maybeProcessReady();
    }, this.options.tickIntervalMs);
    if (this.options.stateCheckIntervalMs > 0) {
      this.stateCheckTimer = setInterval(() => this.maybeProposeStateCheck(), this.options.stateCheckIntervalMs);
      this.stateCheckTimer.unref();
    }
    this.maybeProcessReady();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    if (this.stateCheckTimer !== null) clearInterval(this.stateCheckTimer);
    const stopping = err('stopping', `${this.nodeId} is shutting down`);
    for (const waiter of [...this.proposals.values(), ...this.reads.values(), ...this.forwards.values()]) {
      clearTimeout(waiter.timer);
      waiter.resolve(stopping);
    }
    this.proposals.clear();
    this.reads.clear();
    this.forwards.clear();
    this.options.repairLink.close();
    await this.options.integrity.stop();
  }

  onEvent(listener: (event: ClusterEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  // ---- client API ---------------------------------------------------------

  submit(operation: KvOperation, session: ClientSession | null): Promise<Result<{ index: number; output: KvOutput }>> {
    const unavailable = this.unavailable();
    if (unavailable !== null) return Promise.resolve(unavailable);
    // Without a client session the write has no retry identity: it is applied once as sent.
    const command = encodeCommand({
      clientId: session?.clientId ?? this.nodeId,
      sequence: session?.sequence ?? kvSequenceUnsessioned,
      operation,
    });
    return this.replicate(command);
  }

  read(key: string, linearizable: boolean): Promise<Result<{ value: string | null; index: number }>> {
    const unavailable = this.unavailable();
    if (unavailable !== null) return Promise.resolve(unavailable);
    if (!linearizable) return Promise.resolve(ok({ value: this.kv.read(key), index: this.appliedIndex }));
    if (this.reads.size >= pendingReadsMax) return Promise.resolve(err('overloaded', 'too many reads in flight'));
    const requestId = `${this.bootId}:${this.nextRequestId++}`;
    const started = this.consensus.readIndex(requestId);
    if (!started.ok) return Promise.resolve(this.translateEngineError(started.error));
    const answer = new Promise<Result<{ value: string | null; index: number }>>((resolve) => {
      const timer = setTimeout(() => {
        this.reads.delete(requestId);
        resolve(timeoutError('the read'));
      }, requestTimeoutMs);
      this.reads.set(requestId, { key, index: null, timer, resolve });
    });
    // A single voter confirms the read at once, inside this call: the read must be waiting before it runs.
    this.maybeProcessReady();
    return answer;
  }

  async command(command: Command): Promise<CommandAck> {
    switch (command.type) {
      case 'leadership:transfer':
        return this.transfer(command.to);
      case 'leadership:step-down':
        return this.stepDown();
      case 'member:add':
        return this.addMember(command.node, command.peerAddress, command.learner);
      case 'member:remove':
        return this.membershipChange({ type: 'remove-node', node: command.node }, `removing ${command.node}`);
      case 'scrub:start':
        // The pass reports through scrub:completed (and corruption events); the ack only says it runs.
        void this.options.integrity.scrubNow();
        return ok({ detail: `${this.nodeId} is scrubbing its sealed segments and snapshot` });
      case 'drill:run':
        return this.drill(command.drill);
    }
  }

  // ---- status -------------------------------------------------------------

  status(): NodeStatus {
    const nowMs = this.options.clock.nowMs();
    const engineStatus = this.consensus.status(nowMs);
    const storage = this.options.storage.stats();
    this.observeFsyncs(storage);
    this.sampleCpu(nowMs);
    return {
      ...engineStatus,
      nodeId: this.nodeId,
      clusterId: this.clusterId,
      engine: this.engine,
      integrity: this.options.integrity.status(),
      storage: {
        segments: storage.wal.segmentCount,
        walBytes: storage.wal.segmentBytes,
        snapshotIndex: storage.snapshotIndex ?? 0,
        fsyncP99Ms: storage.fsyncDurationMsP99,
      },
      process: {
        pid: process.pid,
        rssBytes: process.memoryUsage.rss(),
        cpuPercent: this.cpuPercent,
        uptimeMs: nowMs - this.startedAtMs,
      },
      drillsAllowed: this.drillsAllowed,
      activeDrills: [...this.activeDrills],
    };
  }

  // ---- the driver loop ----------------------------------------------------

  private maybeProcessReady(): void {
    if (this.processing || this.stopped || this.fatal !== null || !this.consensus.hasReady()) return;
    this.processing = true;
    void this.processReady().finally(() => {
      this.processing = false;
      // Work that arrived while persisting is picked up at once, not at the next tick.
      if (this.consensus.hasReady()) queueMicrotask(() => this.maybeProcessReady());
    });
  }

  private async processReady(): Promise<void> {
    while (!this.stopped && this.fatal === null && this.consensus.hasReady()) {
      const ready = this.consensus.ready();
      // A hard state that only moved the commit index is not worth two fsyncs: the engine recovers it after a crash.
      const hardState = ready.hardStateMustPersist ? ready.hardState : null;
      if (hardState !== null || ready.entries.length > 0 || ready.snapshot !== null) {
        const persisted = await this.options.storage.persist({ hardState, entries: ready.entries, snapshot: ready.snapshot });
        if (!persisted.ok) {
          this.fail(`storage failed: ${persisted.error.message}`);
          return;
        }
      }
      for (const message of ready.messages) {
        this.options.transport.send(message.to, { kind: 'engine', to: message.to, from: message.from, message });
      }
      if (ready.snapshot !== null) this.restoreSnapshot(ready.snapshot);
      for (const entry of ready.committedEntries) this.apply(entry);
      if (this.options.stateCheckEntries > 0 && this.appliedIndex - this.lastStateCheckIndex >= this.options.stateCheckEntries) {
        // Proposed after this batch is handed back to the engine, not in the middle of its Ready.
        queueMicrotask(() => this.maybeProposeStateCheck());
      }
      for (const readState of ready.readStates) this.onReadState(readState.requestId, readState.index);
      for (const body of ready.events) this.publish(body);
      this.consensus.advance(ready);
      this.answerReads();
      this.noticeLeaderChange();
      await this.maybeSnapshot();
    }
  }

  private apply(entry: Entry): void {
    if (entry.index <= this.appliedIndex) return;
    const pending = this.proposals.get(entry.index);
    if (entry.kind === 'normal' && isStateCheck(entry.data)) {
      this.kv.skip(entry.index);
      this.appliedIndex = entry.index;
      this.lastAppliedEpoch = entry.epoch;
      this.onStateCheckApplied(entry.index);
      return;
    }
    if (entry.kind === 'normal') {
      const decoded = decodeCommand(entry.data);
      if (!decoded.ok) {
        // Every replica decodes the same bytes, so every replica skips it alike.
        this.kv.skip(entry.index);
        this.options.logger.error({ index: entry.index, error: decoded.error.message }, 'committed entry is not a valid command');
      }
      const result = decoded.ok ? this.kv.apply(entry.index, decoded.data) : decoded;
      if (pending !== undefined) {
        this.settleProposal(entry.index, pending, pending.epoch === entry.epoch ? result : err('dropped', 'leadership changed before the write committed; retry'));
      }
    } else {
      this.kv.skip(entry.index);
      if (pending !== undefined) this.settleProposal(entry.index, pending, err('dropped', 'the write was replaced by a new leader; retry'));
    }
    this.appliedIndex = entry.index;
    this.lastAppliedEpoch = entry.epoch;
  }

  private settleProposal(index: number, pending: PendingProposal, result: Result<KvOutput>): void {
    clearTimeout(pending.timer);
    this.proposals.delete(index);
    if (result.ok) this.options.metrics.proposalCommitted();
    else this.options.metrics.proposalFailed(result.error.code);
    pending.resolve(result.ok ? ok({ index, output: result.data }) : result);
  }

  private restoreSnapshot(snapshot: Snapshot): void {
    const restored = KvStateMachine.restore(snapshot.data);
    if (!restored.ok) {
      this.fail(`cannot restore the snapshot at index ${snapshot.meta.index}: ${restored.error.message}`);
      return;
    }
    this.kv = restored.data;
    this.appliedIndex = snapshot.meta.index;
    this.lastAppliedEpoch = snapshot.meta.epoch;
    this.snapshotIndex = snapshot.meta.index;
  }

  private async maybeSnapshot(force = false): Promise<void> {
    if (this.snapshotting.active || this.appliedIndex <= this.snapshotIndex) return;
    if (!force && this.appliedIndex - this.snapshotIndex < this.options.snapshotEntries) return;
    this.snapshotting.active = true;
    try {
      const status = this.consensus.status(this.options.clock.nowMs());
      const index = this.appliedIndex;
      const epoch = this.lastAppliedEpoch;
      const snapshot: Snapshot = {
        meta: { index, epoch, membership: { voters: status.voters, learners: status.learners } },
        data: this.kv.snapshot(),
      };
      const saved = await this.options.storage.saveSnapshot(snapshot);
      if (!saved.ok) {
        this.options.logger.error({ index, error: saved.error.message }, 'snapshot failed; the log is kept');
        return;
      }
      const compacted = this.consensus.compact(snapshot);
      if (compacted.ok) this.snapshotIndex = index;
    } finally {
      this.snapshotting.active = false;
    }
  }

  // ---- reads --------------------------------------------------------------

  private onReadState(requestId: string, index: number): void {
    const pending = this.reads.get(requestId);
    if (pending !== undefined) pending.index = index;
  }

  private answerReads(): void {
    for (const [requestId, pending] of this.reads) {
      if (pending.index === null || pending.index > this.appliedIndex) continue;
      clearTimeout(pending.timer);
      this.reads.delete(requestId);
      pending.resolve(ok({ value: this.kv.read(pending.key), index: this.appliedIndex }));
    }
  }

  // ---- writes and forwarding ----------------------------------------------

  /**
   * Proposes here if this node leads, or forwards to the leader. A write that
   * meets a leadership change it could not have seen coming (a transfer in
   * progress, a leader that just stepped down, no leader for a moment) waits
   * for the new leader and goes there, rather than failing: none of those
   * refusals proposed anything, so trying again cannot apply it twice.
   */
  private async replicate(command: Uint8Array): Promise<Result<{ index: number; output: KvOutput }>> {
    const deadlineMs = this.options.clock.nowMs() + leaderChangeWaitMsMax(this.options);
    for (let attempt = 0; ; attempt += 1) {
      const status = this.consensus.status(this.options.clock.nowMs());
      let answer: Result<{ index: number; output: KvOutput }>;
      if (status.role === 'leader') answer = await this.proposeLocally(command);
      else if (status.leader === null) answer = err('no_leader', `no leader is known to ${this.nodeId}; retry shortly`);
      else answer = (await this.forward(status.leader, { type: 'kv', command })) as Result<{ index: number; output: KvOutput }>;
      if (answer.ok || !leaderChangeCodes.has(answer.error.code) || attempt >= replicateAttemptsMax || this.stopped) return answer;
      if (!(await this.awaitLeaderChange(status.leader, status.role === 'leader', deadlineMs))) return answer;
    }
  }

  /** Waits, tick by tick, until leadership moved on from what the last attempt saw; false at the deadline. */
  private async awaitLeaderChange(leaderSeen: string | null, ledSeen: boolean, deadlineMs: number): Promise<boolean> {
    while (this.options.clock.nowMs() < deadlineMs && !this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, this.options.tickIntervalMs));
      const status = this.consensus.status(this.options.clock.nowMs());
      if (status.role === 'leader' && status.transferringTo === null && !ledSeen) return true;
      if (status.role !== 'leader' && status.leader !== null && (status.leader !== leaderSeen || ledSeen)) return true;
      if (status.role === 'leader' && ledSeen && status.transferringTo === null) return true;
    }
    return false;
  }

  private proposeLocally(command: Uint8Array): Promise<Result<{ index: number; output: KvOutput }>> {
    if (this.proposals.size >= pendingProposalsMax) return Promise.resolve(err('overloaded', 'too many writes in flight'));
    const proposed = this.consensus.propose(command, this.options.clock.nowMs());
    if (!proposed.ok) return Promise.resolve(this.translateEngineError(proposed.error));
    const { index, epoch } = proposed.data;
    this.maybeProcessReady();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.proposals.delete(index);
        this.options.metrics.proposalFailed('timeout');
        resolve(timeoutError('the write'));
      }, requestTimeoutMs);
      this.proposals.set(index, { epoch, timer, resolve });
    });
  }

  private forward(leader: string, request: ForwardRequest): Promise<Result<unknown>> {
    if (this.forwards.size >= pendingForwardsMax) return Promise.resolve(err('overloaded', 'too many forwarded requests in flight'));
    const id = this.nextRequestId++;
    this.options.transport.send(leader, { kind: 'forward', from: this.nodeId, to: leader, id, request });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.forwards.delete(id);
        resolve(timeoutError(`the request forwarded to ${leader}`));
      }, requestTimeoutMs);
      this.forwards.set(id, { timer, resolve });
    });
  }

  private onPeerMessage(envelope: PeerEnvelope<M>): void {
    if (this.stopped || this.activeDrills.has('pause')) return;
    if (envelope.to !== this.nodeId) return;
    switch (envelope.kind) {
      case 'engine':
        if (!this.options.integrity.serving()) return;
        this.consensus.step(envelope.message);
        this.maybeProcessReady();
        return;
      case 'forward':
        void this.serveForwarded(envelope);
        return;
      case 'forward-reply': {
        const waiter = this.forwards.get(envelope.id);
        if (waiter === undefined) return;
        clearTimeout(waiter.timer);
        this.forwards.delete(envelope.id);
        waiter.resolve(envelope.result.ok ? ok(envelope.result.data) : { ok: false, error: envelope.result.error });
        return;
      }
      case 'repair-request':
        void this.serveRepair(envelope.from, envelope.id, envelope.request);
        return;
      case 'repair-reply':
        this.options.repairLink.onReply(envelope);
        return;
      case 'state-hash':
        this.onStateHash(envelope.from, envelope.index, envelope.hash);
    }
  }

  // ---- state-hash comparison (integrity/state-check.ts) -------------------

  /** The leader puts a state-check entry in the log, unless one is in flight or nothing was applied since the last. */
  private maybeProposeStateCheck(): boolean {
    if (this.stopped || this.fatal !== null || !this.options.integrity.serving()) return false;
    if (this.stateCheckProposedIndex !== null && this.appliedIndex < this.stateCheckProposedIndex) return false;
    if (this.appliedIndex <= this.lastStateCheckIndex) return false;
    if (this.consensus.status(this.options.clock.nowMs()).role !== 'leader') return false;
    const proposed = this.consensus.propose(encodeStateCheck(), this.options.clock.nowMs());
    if (!proposed.ok) return false;
    this.stateCheckProposedIndex = proposed.data.index;
    this.maybeProcessReady();
    return true;
  }

  /** Every replica hashes its state at the same index (the entry's) and tells the others. */
  private onStateCheckApplied(index: number): void {
    this.lastStateCheckIndex = index;
    const hash = this.kv.stateHash();
    this.stateHashes.record(index, this.nodeId, hash);
    const status = this.consensus.status(this.options.clock.nowMs());
    for (const member of new Set([...status.voters, ...status.learners])) {
      if (member !== this.nodeId) this.options.transport.send(member, { kind: 'state-hash', from: this.nodeId, to: member, index, hash });
    }
    this.compareStateHashes(index);
  }

  private onStateHash(from: string, index: number, hash: string): void {
    const status = this.consensus.status(this.options.clock.nowMs());
    // Only members' hashes count; anything else on the peer port is not a replica of this state.
    if (!status.voters.includes(from) && !status.learners.includes(from)) return;
    if (this.stateHashes.record(index, from, hash)) this.compareStateHashes(index);
  }

  private compareStateHashes(index: number): void {
    const verdict = this.stateHashes.verdict(index, this.consensus.status(this.options.clock.nowMs()).voters);
    if (verdict.status === 'pending' || verdict.status === 'agreed') return;
    const named = verdict.status === 'minority' ? verdict.minority : verdict.groups.flat();
    const reported = this.stateFindingsReported.get(index) ?? new Set<string>();
    const fresh = named.filter((node) => !reported.has(node));
    if (fresh.length === 0) return;
    for (const node of fresh) reported.add(node);
    this.stateFindingsReported.set(index, reported);
    const tracked = new Set(this.stateHashes.trackedIndexes());
    for (const old of this.stateFindingsReported.keys()) if (!tracked.has(old)) this.stateFindingsReported.delete(old);
    const detail = describeStateVerdict(index, verdict, this.stateHashes.reports(index));
    this.options.logger.error({ index, verdict }, 'replica state hashes diverge');
    this.publish({ type: 'corruption:detected', kind: 'state-divergence', file: null, offset: null, index, detectedBy: 'state-hash', detail: detail.slice(0, 1024) });
    if (verdict.status === 'minority' && verdict.minority.includes(this.nodeId)) {
      // Divergent state must not answer reads or vote on anything; a restart rebuilds it from the snapshot and the log.
      this.options.integrity.markDiverged(`state diverged from the majority at index ${index}: ${detail}`.slice(0, 1024));
    }
  }

  /**
   * Answers a peer that is repairing: only entries this node has committed,
   * read back and verified from its own disk, and only its own verified
   * snapshot. A node that does not serve answers nothing it might hold wrong.
   */
  private async serveRepair(from: string, id: number, request: RepairRequest): Promise<void> {
    const answer = async (): Promise<Result<unknown>> => {
      if (!this.options.integrity.serving()) return err('not_serving', `${this.nodeId} is repairing its own storage`);
      if (request.type === 'entries') {
        const commitIndex = this.consensus.status(this.options.clock.nowMs()).commitIndex;
        if (request.fromIndex > commitIndex) return err('not_committed', `${this.nodeId} has committed only up to ${commitIndex}`);
        const read = await this.options.storage.readEntries(request.fromIndex, Math.min(request.toIndex, commitIndex), repairPageBytesMax);
        return read.ok ? ok({ type: 'entries', entries: read.data }) : read;
      }
      let stored = await this.options.storage.readNewestSnapshotBytes();
      if (stored.ok && (stored.data === null || stored.data.index < request.indexMin) && this.appliedIndex >= request.indexMin) {
        await this.maybeSnapshot(true);
        stored = await this.options.storage.readNewestSnapshotBytes();
      }
      if (!stored.ok) return stored;
      if (stored.data === null || stored.data.index < request.indexMin) return err('not_available', `${this.nodeId} has no snapshot at or above index ${request.indexMin}`);
      return ok({ type: 'snapshot', bytes: stored.data.bytes });
    };
    let result: Result<unknown>;
    try {
      result = await answer();
    } catch (error) {
      result = err('repair_failed', error instanceof Error ? error.message : String(error));
    }
    this.options.transport.send(from, { kind: 'repair-reply', from: this.nodeId, to: from, id, result });
  }

  /** The local repair of a damaged snapshot file: the live state machine, verified when it was built, written again. */
  private async rewriteSnapshot(): Promise<Result<null>> {
    const status = this.consensus.status(this.options.clock.nowMs());
    const snapshot: Snapshot = {
      meta: { index: this.appliedIndex, epoch: this.lastAppliedEpoch, membership: { voters: status.voters, learners: status.learners } },
      data: this.kv.snapshot(),
    };
    return this.options.storage.rewriteSnapshot(snapshot);
  }

  private async serveForwarded(envelope: Extract<ControlEnvelope, { kind: 'forward' }>): Promise<void> {
    const { request } = envelope;
    let result: Result<unknown>;
    const status = this.consensus.status(this.options.clock.nowMs());
    if (status.role !== 'leader') {
      result = err('not_leader', `${this.nodeId} is no longer the leader; retry`);
    } else if (request.type === 'kv') {
      const decoded = decodeCommand(request.command);
      result = decoded.ok ? await this.proposeLocally(request.command) : decoded;
    } else {
      result = await this.transfer(request.to);
    }
    this.options.transport.send(envelope.from, { kind: 'forward-reply', from: this.nodeId, to: envelope.from, id: envelope.id, result });
  }

  // ---- operator commands --------------------------------------------------

  private async transfer(target: string): Promise<CommandAck> {
    const status = this.consensus.status(this.options.clock.nowMs());
    if (status.role !== 'leader') {
      if (status.leader === null) return err('no_leader', 'no leader is known; cannot transfer leadership now');
      const forwarded = await this.forward(status.leader, { type: 'transfer', to: target });
      return forwarded as CommandAck;
    }
    if (target === this.nodeId) return ok({ detail: `${target} already leads` });
    const refusal = this.transferRefusal(status, target);
    if (refusal !== null) {
      this.publish({ type: 'transfer:refused', epoch: status.epoch, to: target, code: refusal.error.code, reason: refusal.error.message });
      return refusal;
    }
    const started = this.consensus.transferLeadership(target);
    if (!started.ok) return this.translateEngineError(started.error);
    this.maybeProcessReady();
    return this.awaitLeader(target);
  }

  private transferRefusal(status: ReturnType<ConsensusEngine['status']>, target: string): Err | null {
    if (!status.voters.includes(target)) {
      if (status.learners.includes(target)) return err('target_is_learner', `${target} is a learner; promote it to a voter first`);
      return err('unknown_node', `${target} is not a member of this cluster`);
    }
    const follower = status.followers.find((candidate) => candidate.nodeId === target);
    const electionTimeoutMs = this.options.electionTimeoutTicks * this.options.tickIntervalMs;
    if (follower === undefined || follower.lastContactMs === null || follower.lastContactMs > electionTimeoutMs) {
      return err('target_unreachable', `${target} has not answered the leader within the election timeout (${electionTimeoutMs} ms)`);
    }
    if (follower.lagEntries > transferLagEntriesMax) {
      return err('target_lagging', `${target} is ${follower.lagEntries} entries behind (limit ${transferLagEntriesMax}); let it catch up first`);
    }
    return null;
  }

  /** Resolves once `target` leads, or with the reason the transfer failed. */
  private awaitLeader(target: string): Promise<CommandAck> {
    const startedAtMs = this.options.clock.nowMs();
    const deadlineMs = startedAtMs + Math.max(requestTimeoutMs, 4 * this.options.electionTimeoutTicks * this.options.tickIntervalMs);
    return new Promise((resolve) => {
      let unsubscribe: () => void = () => {};
      const timer = setInterval(() => {
        const status = this.consensus.status(this.options.clock.nowMs());
        if (status.leader === target && status.role !== 'leader') {
          finish(ok({ detail: `${target} leads after ${Math.round(this.options.clock.nowMs() - startedAtMs)} ms` }));
        } else if (this.options.clock.nowMs() > deadlineMs) {
          finish(err('timeout', `${target} did not take over within ${Math.round(deadlineMs - startedAtMs)} ms`));
        }
      }, Math.max(1, Math.floor(this.options.tickIntervalMs / 2)));
      const finish = (answer: CommandAck) => {
        clearInterval(timer);
        unsubscribe();
        resolve(answer);
      };
      unsubscribe = this.onEvent((event) => {
        if (event.body.type === 'transfer:aborted' && event.body.to === target) finish(err('transfer_aborted', event.body.reason));
      });
    });
  }

  private async stepDown(): Promise<CommandAck> {
    const status = this.consensus.status(this.options.clock.nowMs());
    if (status.role !== 'leader') return err('not_leader', `${this.nodeId} is not the leader`);
    const best = status.followers
      .filter((follower) => follower.voter && follower.lastContactMs !== null)
      .sort((a, b) => b.matchIndex - a.matchIndex || (a.lastContactMs ?? 0) - (b.lastContactMs ?? 0))[0];
    if (best === undefined) return err('no_candidate', 'no caught-up voter to hand leadership to');
    return this.transfer(best.nodeId);
  }

  private async addMember(node: string, peerAddress: string, learner: boolean): Promise<CommandAck> {
    const match = /^(.+):(\d{1,5})$/.exec(peerAddress);
    if (match === null) return err('invalid_payload', 'peerAddress must be host:port');
    this.options.transport.addPeer({ id: node, host: match[1] ?? '', port: Number(match[2]) });
    return this.membershipChange({ type: learner ? 'add-learner' : 'add-voter', node }, `adding ${node}${learner ? ' as a learner' : ''}`);
  }

  private async membershipChange(change: Parameters<ConsensusEngine['changeMembership']>[0], what: string): Promise<CommandAck> {
    const proposed = this.consensus.changeMembership(change);
    if (!proposed.ok) return this.translateEngineError(proposed.error);
    this.maybeProcessReady();
    const { index } = proposed.data;
    const deadline = this.options.clock.nowMs() + requestTimeoutMs;
    while (this.appliedIndex < index) {
      if (this.options.clock.nowMs() > deadline) return timeoutError(what);
      await new Promise((resolve) => setTimeout(resolve, this.options.tickIntervalMs));
    }
    if (change.type === 'remove-node') this.options.transport.removePeer(change.node);
    return ok({ detail: `${what}: committed at index ${index}` });
  }

  private async drill(drill: Extract<Command, { type: 'drill:run' }>['drill']): Promise<CommandAck> {
    if (!this.drillsAllowed) return err('drills_disabled', `drills are disabled on ${this.nodeId}`);
    switch (drill.kind) {
      case 'pause':
        return this.pause(drill.durationMs ?? pauseDurationMsDefault);
      case 'resume':
        return ok({ detail: `${this.nodeId} is not paused` });
      case 'isolate':
        this.options.transport.isolate(drill.peers);
        return this.startDrill('isolate', drill.peers === null ? 'all peer traffic dropped' : `traffic to and from ${drill.peers.join(', ')} dropped`);
      case 'heal':
        this.options.transport.heal();
        return this.endDrill('isolate', 'peer traffic restored');
      case 'slow-disk':
        this.options.storage.setFsyncDelayMs(drill.delayMs);
        return drill.delayMs === 0 ? this.endDrill('slow-disk', 'disk at full speed') : this.startDrill('slow-disk', `every fsync delayed by ${drill.delayMs} ms`);
      case 'slow-network':
        this.options.transport.setDelayMs(drill.delayMs);
        return drill.delayMs === 0
          ? this.endDrill('slow-network', 'network at full speed')
          : this.startDrill('slow-network', `every peer message delayed by ${drill.delayMs} ms`);
      case 'corrupt': {
        if (drill.target === 'state') {
          const changed = this.kv.corruptForDrill(drill.seed ?? Math.floor(Math.random() * 0x7fff_ffff));
          const detail = `${this.nodeId}'s in-memory key-value state: ${changed}; the next state check names it`;
          this.publish({ type: 'drill:started', drill: 'corrupt', detail });
          this.publish({ type: 'drill:ended', drill: 'corrupt', detail: 'state changed; the state-hash check finds it' });
          return ok({ detail });
        }
        const injected = await this.options.integrity.injectFault(drill.target, drill.fault, drill.seed ?? Math.floor(Math.random() * 0x7fff_ffff));
        if (!injected.ok) return injected;
        const detail = `${drill.fault} in ${injected.data.file} at offset ${injected.data.offset}: ${injected.data.detail}`;
        // A one-shot drill: the damage stays until the integrity engine finds and repairs it.
        this.publish({ type: 'drill:started', drill: 'corrupt', detail: detail.slice(0, 1024) });
        this.publish({ type: 'drill:ended', drill: 'corrupt', detail: 'fault injected; the scrubber or the next read finds it' });
        return ok({ detail: detail.slice(0, 1024) });
      }
    }
  }

  private startDrill(kind: DrillKind, detail: string): CommandAck {
    this.activeDrills.add(kind);
    this.publish({ type: 'drill:started', drill: kind, detail });
    return ok({ detail });
  }

  private endDrill(kind: DrillKind, detail: string): CommandAck {
    if (this.activeDrills.delete(kind)) this.publish({ type: 'drill:ended', drill: kind, detail });
    return ok({ detail });
  }

  /**
   * A real pause: the process stops (SIGSTOP) and answers nothing, as a hung
   * node would. It cannot wake itself, so a detached helper sends SIGCONT
   * after the duration; the ack goes out before the stop.
   */
  private pause(durationMs: number): CommandAck {
    if (process.platform === 'win32') return err('unsupported', 'pausing needs POSIX signals');
    const seconds = (durationMs / 1000).toFixed(3);
    const waker = spawn('/bin/sh', ['-c', `sleep ${seconds}; kill -CONT ${process.pid}`], { detached: true, stdio: 'ignore' });
    waker.unref();
    this.publish({ type: 'drill:started', drill: 'pause', detail: `paused for ${durationMs} ms` });
    setTimeout(() => {
      process.kill(process.pid, 'SIGSTOP');
      // Execution continues here after SIGCONT.
      this.publish({ type: 'drill:ended', drill: 'pause', detail: 'resumed' });
    }, 50);
    return ok({ detail: `${this.nodeId} pauses for ${durationMs} ms` });
  }

  // ---- helpers ------------------------------------------------------------

  private unavailable(): Result<never> | null {
    if (!this.options.integrity.serving()) return err('not_serving', `${this.nodeId} is not serving: ${this.options.integrity.notServingReason() ?? 'storage under repair'}`);
    if (this.fatal !== null) return err('not_serving', `${this.nodeId} is not serving: ${this.fatal}`);
    if (this.stopped) return err('stopping', `${this.nodeId} is shutting down`);
    return null;
  }

  private translateEngineError(error: { code: string; message: string }): Result<never> {
    return { ok: false, error };
  }

  private fail(reason: string): void {
    if (this.fatal !== null) return;
    this.fatal = reason;
    this.options.logger.error({ reason }, 'node stopped serving');
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
  }

  private publish(body: EventBody): void {
    const event: ClusterEvent = {
      id: `${this.nodeId}:${this.bootId}:${(this.eventSequence += 1)}`,
      atMs: this.options.clock.nowMs(),
      nodeId: this.nodeId,
      body: body.type === 'leader:elected' ? { ...body, leaderlessMs: body.leaderlessTicks * this.options.tickIntervalMs } : body,
    };
    for (const listener of this.eventListeners) listener(event);
  }

  private noticeLeaderChange(): void {
    const leader = this.consensus.status(this.options.clock.nowMs()).leader;
    if (leader !== this.lastLeader && leader !== null) this.options.metrics.leaderChanged();
    this.lastLeader = leader;
  }

  private observeFsyncs(storage: ReturnType<HostStorage['stats']>): void {
    const fresh = Math.min(storage.fsyncCount - this.lastFsyncCount, storage.fsyncDurationsMs.length);
    for (const durationMs of storage.fsyncDurationsMs.slice(storage.fsyncDurationsMs.length - fresh)) this.options.metrics.fsyncObserved(durationMs);
    this.lastFsyncCount = storage.fsyncCount;
  }

  private sampleCpu(nowMs: number): void {
    const elapsedMs = nowMs - this.cpuSample.atMs;
    if (elapsedMs < 1_000) return;
    const usage = process.cpuUsage(this.cpuSample.usage);
    this.cpuPercent = Math.round(((usage.user + usage.system) / 1000 / elapsedMs) * 1000) / 10;
    this.cpuSample = { atMs: nowMs, usage: process.cpuUsage() };
  }
}

function describeStateVerdict(index: number, verdict: Exclude<StateCheckVerdict, { status: 'pending' | 'agreed' }>, reports: ReadonlyMap<string, string>): string {
  if (verdict.status === 'no-majority') {
    return `state hashes at index ${index} split with no majority: ${verdict.groups.map((group) => `[${group.join(', ')}] ${reports.get(group[0] ?? '') ?? '?'}`).join(' vs ')}`;
  }
  const minority = verdict.minority.map((node) => `${node} (${reports.get(node) ?? '?'})`).join(', ');
  return `minority: ${verdict.minority.join(', ')}; state hash at index ${index} differs: ${minority} vs the majority ${verdict.majority.join(', ')} (${verdict.hash})`;
}
