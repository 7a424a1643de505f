/**
 * One simulated node: an engine, its storage and its KV state machine, driven
 * by the host loop of `ConsensusEngine` (persist, then send, then apply, then
 * advance), and the server side of the client protocol.
 */
import type { ConsensusEngine, EngineMessage, Entry, Ready, Snapshot } from '../agent/consensus/engine';
import { decodeCommand, encodeCommand, KvStateMachine, type KvResult } from '../agent/kv';
import type { NodeId } from '../shared/protocol';
import { fingerprintOf, type EntryFingerprint, type LogView, type SafetyMonitor } from './invariants';
import { SimStorage } from './storage';
import { ViolationError } from './violation';
import type { ClientReply, ClientRequest } from './workload';

/** How a `get` is served: through the log, through ReadIndex, or (deliberately broken) from any replica's local state. */
export type ReadMode = 'log' | 'read-index' | 'follower-local';

/** Writes waiting for their entry to apply, one per client at most. */
export const pendingWritesMax = 1024;
/** Reads waiting for their read index; the oldest is dropped beyond this (its client times out). */
export const pendingReadsMax = 1024;
/** A step whose `Ready` does not settle within this many rounds means the engine loops. */
export const readyRoundsPerStepMax = 64;

export interface NodeContext<M extends EngineMessage> {
  readonly nowMs: number;
  readonly monitor: SafetyMonitor;
  readonly readMode: ReadMode;
  send(message: M): void;
  reply(reply: ClientReply): void;
}

interface PendingWrite {
  readonly sequence: number;
  readonly requestId: string;
  readonly operationNumber: number;
}

interface PendingRead {
  readonly clientId: string;
  readonly operationNumber: number;
  readonly key: string;
  index: number | null;
}

type ReplyEnvelope = Pick<ClientReply, 'requestId' | 'clientId' | 'operationNumber'>;

function envelopeOf(request: ClientRequest): ReplyEnvelope {
  return { requestId: request.requestId, clientId: request.command.clientId, operationNumber: request.operationNumber };
}

function replyFor(envelope: ReplyEnvelope, result: KvResult): ClientReply {
  if (result.ok) return { ...envelope, outcome: 'ok', output: result.data };
  return { ...envelope, outcome: 'refused', code: result.error.code };
}

export class SimNode<M extends EngineMessage> {
  readonly storage = new SimStorage();
  private engineValue: ConsensusEngine<M> | null = null;
  private kvValue: KvStateMachine | null = null;
  private readonly pendingWrites = new Map<string, PendingWrite>();
  private readonly pendingReads = new Map<string, PendingRead>();
  private readonly fingerprints = new WeakMap<Entry, EntryFingerprint>();
  incarnation = 0;

  constructor(
    readonly id: NodeId,
    readonly tickIntervalMs: number,
  ) {
    const storage = this.storage;
    this.logView = {
      get snapshotIndex() {
        return storage.snapshotIndex;
      },
      get snapshotEpoch() {
        return storage.snapshotEpoch;
      },
      get lastIndex() {
        return storage.lastIndex;
      },
      get lastEpoch() {
        return storage.epochAt(storage.lastIndex) ?? 0;
      },
      fingerprintAt: (index) => this.fingerprintAt(index),
    };
  }

  get up(): boolean {
    return this.engineValue !== null;
  }

  get engine(): ConsensusEngine<M> {
    if (this.engineValue === null) throw new Error(`node ${this.id} is down`);
    return this.engineValue;
  }

  get kv(): KvStateMachine {
    if (this.kvValue === null) throw new Error(`node ${this.id} is down`);
    return this.kvValue;
  }

  /** The stored log, as the safety monitor reads it. */
  readonly logView: LogView;
  /** Compactions the engine refused (it may, for instance while it sends a snapshot). */
  compactionsRefused = 0;
  compactions = 0;

  /** Starts (or restarts) from what storage kept; a fresh node starts empty. */
  start(create: (restored: ReturnType<SimStorage['restoredState']>) => ConsensusEngine<M>, monitor: SafetyMonitor): void {
    this.incarnation += 1;
    const restored = this.storage.restoredState();
    this.kvValue = restored.snapshot === null ? new KvStateMachine() : this.restoreKv(restored.snapshot);
    monitor.recordStateMachineReset(this.id, this.kvValue.appliedIndex);
    this.engineValue = create(restored);
  }

  crash(monitor: SafetyMonitor): void {
    this.engineValue = null;
    this.kvValue = null;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    monitor.recordCrash(this.id);
  }

  tick(context: NodeContext<M>, compactionEntriesMin: number): void {
    this.engine.tick();
    this.drainReady(context);
    this.maybeCompact(compactionEntriesMin);
    this.drainReady(context);
  }

  step(context: NodeContext<M>, message: M): void {
    this.engine.step(message);
    this.drainReady(context);
  }

  handleRequest(context: NodeContext<M>, request: ClientRequest): void {
    const { command } = request;
    if (command.operation.type === 'get' && context.readMode !== 'log') {
      this.handleRead(context, request, command.operation.key);
    } else {
      this.handleProposal(context, request);
    }
    this.drainReady(context);
  }

  /** Runs the host loop after the simulator called the engine directly (a membership change). */
  drain(context: NodeContext<M>): void {
    this.drainReady(context);
  }

  /** Reports the node's status to the safety monitor. */
  observe(context: NodeContext<M>): void {
    const status = this.engine.status(context.nowMs);
    const violation = context.monitor.recordStatus(this.id, status);
    if (violation !== null) throw new ViolationError(violation.invariant, violation.message);
  }

  private handleProposal(context: NodeContext<M>, request: ClientRequest): void {
    const { command } = request;
    if (this.pendingWrites.size >= pendingWritesMax && !this.pendingWrites.has(command.clientId)) {
      context.reply({ ...envelopeOf(request), outcome: 'redirect', leaderHint: null });
      return;
    }
    const proposed = this.engine.propose(encodeCommand(command), context.nowMs);
    if (!proposed.ok) {
      this.redirect(context, request);
      return;
    }
    this.pendingWrites.set(command.clientId, { sequence: command.sequence, requestId: request.requestId, operationNumber: request.operationNumber });
  }

  private handleRead(context: NodeContext<M>, request: ClientRequest, key: string): void {
    const { command } = request;
    if (context.readMode === 'follower-local') {
      // Deliberately unsafe: a lagging replica answers from its own state.
      context.reply({ ...envelopeOf(request), outcome: 'ok', output: { type: 'get', value: this.kv.read(key) } });
      return;
    }
    const started = this.engine.readIndex(request.requestId);
    if (!started.ok) {
      this.redirect(context, request);
      return;
    }
    if (this.pendingReads.size >= pendingReadsMax) {
      const oldest = this.pendingReads.keys().next();
      if (oldest.done !== true) this.pendingReads.delete(oldest.value);
    }
    this.pendingReads.set(request.requestId, { clientId: command.clientId, operationNumber: request.operationNumber, key, index: null });
  }

  private redirect(context: NodeContext<M>, request: ClientRequest): void {
    const leader = this.engine.status(context.nowMs).leader;
    context.reply({ ...envelopeOf(request), outcome: 'redirect', leaderHint: leader === this.id ? null : leader });
  }

  private drainReady(context: NodeContext<M>): void {
    for (let round = 0; this.engine.hasReady(); round += 1) {
      if (round >= readyRoundsPerStepMax) {
        throw new ViolationError('engine-error', `${this.id} still has Ready after ${readyRoundsPerStepMax} rounds in one step`);
      }
      const ready = this.engine.ready();
      this.persist(context, ready);
      for (const message of ready.messages) context.send(message);
      this.applyCommitted(context, ready.committedEntries);
      for (const readState of ready.readStates) {
        const pending = this.pendingReads.get(readState.requestId);
        if (pending !== undefined) pending.index = readState.index;
      }
      this.serveReads(context);
      this.engine.advance(ready);
    }
  }

  /** Snapshot, then entries, then hard state, all durable before any message of this `Ready` leaves. */
  private persist(context: NodeContext<M>, ready: Ready<M>): void {
    if (ready.snapshot !== null) this.installSnapshot(context, ready.snapshot);
    if (ready.entries.length > 0) {
      const appended = this.storage.append(ready.entries);
      if (!appended.ok) throw new ViolationError('storage-contract', `${this.id}: ${appended.error.message}`);
      const violation = context.monitor.recordPersisted(this.id, ready.entries);
      if (violation !== null) throw new ViolationError(violation.invariant, violation.message);
    }
    if (ready.hardState !== null) this.storage.setHardState(ready.hardState);
  }

  private installSnapshot(context: NodeContext<M>, snapshot: Snapshot): void {
    if (snapshot.meta.index < this.kv.appliedIndex) {
      throw new ViolationError(
        'state-machine-safety',
        `${this.id} was handed a snapshot at ${snapshot.meta.index} after applying up to ${this.kv.appliedIndex}`,
      );
    }
    const installed = this.storage.installSnapshot(snapshot);
    if (!installed.ok) throw new ViolationError('storage-contract', `${this.id}: ${installed.error.message}`);
    this.kvValue = this.restoreKv(snapshot);
    context.monitor.recordStateMachineReset(this.id, snapshot.meta.index);
  }

  private restoreKv(snapshot: Snapshot): KvStateMachine {
    const restored = KvStateMachine.restore(snapshot.data);
    if (!restored.ok) throw new ViolationError('storage-contract', `${this.id}: ${restored.error.message}`);
    if (restored.data.appliedIndex !== snapshot.meta.index) {
      throw new ViolationError(
        'storage-contract',
        `${this.id}: snapshot meta says index ${snapshot.meta.index} but its state was taken at ${restored.data.appliedIndex}`,
      );
    }
    return restored.data;
  }

  private applyCommitted(context: NodeContext<M>, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const epoch = this.engine.status(context.nowMs).epoch;
    for (const entry of entries) {
      if (entry.index !== this.kv.appliedIndex + 1) {
        throw new ViolationError(
          'state-machine-safety',
          `${this.id} was asked to apply index ${entry.index} right after ${this.kv.appliedIndex}`,
        );
      }
      const violation = context.monitor.recordApplied(this.id, entry, epoch);
      if (violation !== null) throw new ViolationError(violation.invariant, violation.message);
      this.applyEntry(context, entry);
    }
  }

  private applyEntry(context: NodeContext<M>, entry: Entry): void {
    const decoded = entry.kind === 'normal' ? decodeCommand(entry.data) : null;
    if (decoded === null || !decoded.ok) {
      this.kv.skip(entry.index);
      return;
    }
    const command = decoded.data;
    const result = this.kv.apply(entry.index, command);
    const pending = this.pendingWrites.get(command.clientId);
    if (pending === undefined || pending.sequence !== command.sequence) return;
    this.pendingWrites.delete(command.clientId);
    const envelope = { requestId: pending.requestId, clientId: command.clientId, operationNumber: pending.operationNumber };
    context.reply(replyFor(envelope, result));
  }

  private serveReads(context: NodeContext<M>): void {
    for (const [requestId, read] of this.pendingReads) {
      if (read.index === null || read.index > this.kv.appliedIndex) continue;
      this.pendingReads.delete(requestId);
      const envelope = { requestId, clientId: read.clientId, operationNumber: read.operationNumber };
      context.reply({ ...envelope, outcome: 'ok', output: { type: 'get', value: this.kv.read(read.key) } });
    }
  }

  /**
   * Takes a snapshot of the state machine and lets the engine drop its log
   * prefix. Only when no config entry follows the applied index, so that the
   * engine's current membership is the membership at that index.
   */
  private maybeCompact(compactionEntriesMin: number): void {
    const appliedIndex = this.kv.appliedIndex;
    if (appliedIndex - this.storage.snapshotIndex < compactionEntriesMin) return;
    if (this.storage.hasConfigEntryAfter(appliedIndex)) return;
    const epoch = this.storage.epochAt(appliedIndex);
    if (epoch === null) return;
    const status = this.engine.status(0);
    const snapshot: Snapshot = {
      meta: { index: appliedIndex, epoch, membership: { voters: [...status.voters], learners: [...status.learners] } },
      data: this.kv.snapshot(),
    };
    const installed = this.storage.installSnapshot(snapshot);
    if (!installed.ok) throw new ViolationError('storage-contract', `${this.id}: ${installed.error.message}`);
    if (this.engine.compact(snapshot).ok) this.compactions += 1;
    else this.compactionsRefused += 1;
  }

  fingerprintAt(index: number): EntryFingerprint | null {
    const entry = this.storage.entryAt(index);
    if (entry === null) return null;
    let fingerprint = this.fingerprints.get(entry);
    if (fingerprint === undefined) {
      fingerprint = fingerprintOf(entry);
      this.fingerprints.set(entry, fingerprint);
    }
    return fingerprint;
  }
}
