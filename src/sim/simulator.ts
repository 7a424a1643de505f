/**
 * The deterministic simulator (DESIGN.md): N engines from one `EngineFactory`
 * in virtual time, driven by a single seeded event queue. It injects network
 * faults, crashes and restarts (only what the engine persisted survives),
 * clock skew, compaction and membership changes; runs concurrent KV clients;
 * checks the safety invariants after every step and the client history for
 * linearizability at the end. The core is pure: no wall clock, no
 * `Math.random`, no I/O, so a seed replays a run exactly.
 */
import { Xxh64 } from '@node-rs/xxhash';
import type { EngineFactory, EngineMessage, EngineOptions, MembershipChange } from '../agent/consensus/engine';
import type { NodeId } from '../shared/protocol';
import { createRandom, type SeededRandom } from '../shared/random';
import { SafetyMonitor } from './invariants';
import { checkLinearizability, kvRegisterModel, type LinearizabilityVerdict } from './linearizability';
import { SimNetwork, type NetworkProfile } from './network';
import { SimNode, type NodeContext, type ReadMode } from './node';
import { drawScenario, type FaultAction, type ScenarioFamily } from './scenarios';
import { EventQueue } from './scheduler';
import { ViolationError, type SimViolation } from './violation';
import { Workload, type ClientReply, type ClientRequest, type ClientTimer, type WorkloadHost } from './workload';
import type { HistoryOperation } from './linearizability';
import type { KvOperation, KvOutput } from '../agent/kv';

export type EngineTuning = Pick<
  EngineOptions,
  'electionTimeoutTicks' | 'heartbeatIntervalTicks' | 'preVote' | 'checkQuorum' | 'inflightAppendsMax' | 'appendBytesMax'
>;

export interface SimRunOptions<M extends EngineMessage> {
  readonly factory: EngineFactory<M>;
  /** The name the CLI knows the engine by, for the replay command. */
  readonly engineName: string;
  readonly family: ScenarioFamily;
  readonly seed: number;
  /** Initial voters; drawn from the seed in [3, 5] when absent. */
  readonly nodes?: number;
  /** A cap on scheduler steps; the run ends early (without failing) when it is reached. */
  readonly stepsMax?: number;
  /** Virtual time with faults and new client operations. */
  readonly faultPhaseMs?: number;
  /** Virtual time after healing everything, for retries to finish. */
  readonly settleMs?: number;
  /** Drawn from the seed (log or read-index) when absent. */
  readonly readMode?: ReadMode;
  readonly clients?: number;
  readonly keys?: number;
  readonly tuning?: Partial<EngineTuning>;
  /** Overrides of the family's network profile (for example a very lossy network). */
  readonly network?: Partial<NetworkProfile>;
  /** Keep the client history in the result (tests use it). */
  readonly keepHistory?: boolean;
}

export interface SimStats {
  readonly steps: number;
  readonly virtualMs: number;
  readonly nodes: number;
  readonly readMode: ReadMode;
  readonly messagesSent: number;
  readonly messagesDelivered: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly membershipChangesProposed: number;
  readonly compactions: number;
  readonly leaderEpochs: number;
  readonly committedEntries: number;
  readonly operations: number;
  readonly operationsCompleted: number;
  readonly linearizability: LinearizabilityVerdict['outcome'] | 'skipped';
}

export interface SimRunResult {
  readonly engine: string;
  readonly family: ScenarioFamily;
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: SimViolation | null;
  /** The command that replays this run. */
  readonly replay: string;
  /** A digest of every step and the final states: equal seeds give equal hashes. */
  readonly traceHash: string;
  readonly stats: SimStats;
  readonly history: readonly HistoryOperation<KvOperation, KvOutput>[] | null;
}

export const simDefaults = {
  stepsMax: 400_000,
  faultPhaseMs: 1_500,
  settleMs: 1_000,
  clients: 4,
  keys: 3,
  tickIntervalMs: 10,
  tuning: {
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 2,
    preVote: true,
    checkQuorum: true,
    inflightAppendsMax: 16,
    appendBytesMax: 16 * 1024,
  } satisfies EngineTuning,
} as const;

type SimEvent<M> =
  | { readonly kind: 'tick'; readonly node: NodeId; readonly incarnation: number }
  | { readonly kind: 'deliver'; readonly to: NodeId; readonly message: M }
  | { readonly kind: 'client-request'; readonly node: NodeId; readonly request: ClientRequest }
  | { readonly kind: 'client-reply'; readonly reply: ClientReply }
  | { readonly kind: 'client-timer'; readonly timer: ClientTimer }
  | { readonly kind: 'fault'; readonly action: FaultAction }
  | { readonly kind: 'restart'; readonly node: NodeId }
  | { readonly kind: 'settle' };

export function replayCommand(options: { engineName: string; family: ScenarioFamily; seed: number; nodes?: number; stepsMax?: number }): string {
  const parts = ['npx quorumscope sim', `--engine ${options.engineName}`, `--family ${options.family}`, `--seed ${options.seed}`];
  if (options.nodes !== undefined) parts.push(`--nodes ${options.nodes}`);
  if (options.stepsMax !== undefined) parts.push(`--steps ${options.stepsMax}`);
  return parts.join(' ');
}

/** Runs one seed of one scenario family to the end or to its first violation. */
export function runSimulation<M extends EngineMessage>(options: SimRunOptions<M>): SimRunResult {
  return new Simulation(options).run();
}

class Simulation<M extends EngineMessage> {
  private readonly random: SeededRandom;
  private readonly queue = new EventQueue<SimEvent<M>>();
  private readonly nodes = new Map<NodeId, SimNode<M>>();
  private readonly monitor: SafetyMonitor;
  private readonly network: SimNetwork;
  private readonly workload: Workload;
  private readonly trace = new Xxh64(0n);
  private readonly readMode: ReadMode;
  private readonly tuning: EngineTuning;
  private readonly initialVoters: NodeId[];
  private readonly removedNodes = new Set<NodeId>();
  private readonly faultPhaseMs: number;
  private readonly endMs: number;
  private readonly compactionEntriesMin: number;
  private nowMs = 0;
  private steps = 0;
  private counters = { messagesSent: 0, messagesDelivered: 0, crashes: 0, partitions: 0, membershipChangesProposed: 0 };

  constructor(private readonly options: SimRunOptions<M>) {
    this.random = createRandom(options.seed);
    const nodeCount = options.nodes ?? this.random.int(3, 5);
    this.readMode = options.readMode ?? (this.random.chance(0.5) ? 'log' : 'read-index');
    this.tuning = { ...simDefaults.tuning, preVote: this.random.chance(0.7), checkQuorum: this.random.chance(0.7), ...options.tuning };
    this.faultPhaseMs = options.faultPhaseMs ?? simDefaults.faultPhaseMs;
    this.endMs = this.faultPhaseMs + (options.settleMs ?? simDefaults.settleMs);
    this.compactionEntriesMin = this.random.int(8, 40);
    const scenario = drawScenario(options.family, this.random.fork(), this.faultPhaseMs);
    this.network = new SimNetwork({ ...scenario.network, ...options.network }, this.random.fork());
    this.initialVoters = Array.from({ length: nodeCount }, (_, index) => `n${index + 1}`);
    // Raft's up-to-date rule makes a stronger check possible while the voters stay fixed.
    const upToDateRuleVoters = options.factory.kind === 'raft' && scenario.spareNodes === 0 ? this.initialVoters : null;
    this.monitor = new SafetyMonitor((node) => this.nodeOf(node).logView, { upToDateRuleVoters });
    const allNodes = [...this.initialVoters, ...Array.from({ length: scenario.spareNodes }, (_, index) => `n${nodeCount + index + 1}`)];
    for (const id of allNodes) {
      // Clock skew: each node's tick runs up to 30% fast or slow.
      const tickIntervalMs = this.random.int(Math.round(simDefaults.tickIntervalMs * 0.7), Math.round(simDefaults.tickIntervalMs * 1.3));
      this.nodes.set(id, new SimNode<M>(id, tickIntervalMs));
    }
    for (const fault of scenario.faults) this.queue.push(fault.atMs, { kind: 'fault', action: fault.action });
    this.queue.push(this.faultPhaseMs, { kind: 'settle' });
    this.workload = new Workload(
      {
        clients: options.clients ?? simDefaults.clients,
        keys: options.keys ?? simDefaults.keys,
        nodes: allNodes,
        workloadEndMs: this.faultPhaseMs,
        requestTimeoutMs: 120,
        attemptsMax: 12,
        thinkTimeMsMax: 15,
        redirectBackoffMs: 15,
        operationsPerClientMax: 10_000,
        readsToAnyNode: this.readMode === 'follower-local',
        readsThroughLog: this.readMode === 'log',
      },
      this.random.fork(),
    );
  }

  run(): SimRunResult {
    let violation: SimViolation | null = null;
    let linearizability: SimStats['linearizability'] = 'skipped';
    try {
      this.startAll();
      this.loop();
      this.checkReplicasAgree();
      const verdict = checkLinearizability(this.workload.history, kvRegisterModel);
      linearizability = verdict.outcome;
      if (verdict.outcome === 'not-linearizable') throw new ViolationError('linearizability', verdict.explanation);
    } catch (error) {
      violation = this.toViolation(error);
    }
    for (const node of this.nodes.values()) this.trace.update(`${node.id}=${node.up ? node.kv.stateHash() : 'down'};`);
    return this.result(violation, linearizability);
  }

  private loop(): void {
    const stepsMax = this.options.stepsMax ?? simDefaults.stepsMax;
    while (this.steps < stepsMax) {
      const next = this.queue.pop();
      if (next === null || next.timeMs > this.endMs) return;
      this.nowMs = next.timeMs;
      this.steps += 1;
      this.dispatch(next.event);
    }
  }

  private dispatch(event: SimEvent<M>): void {
    switch (event.kind) {
      case 'tick':
        return this.onTick(event.node, event.incarnation);
      case 'deliver':
        return this.onDeliver(event.to, event.message);
      case 'client-request':
        return this.onClientRequest(event.node, event.request);
      case 'client-reply':
        this.trace.update(`${this.nowMs}r${event.reply.requestId}${event.reply.outcome};`);
        return this.workload.onReply(this.workloadHost(), event.reply);
      case 'client-timer':
        return this.workload.onTimer(this.workloadHost(), event.timer);
      case 'fault':
        return this.applyFault(event.action);
      case 'restart':
        return this.restart(event.node);
      case 'settle':
        return this.settle();
    }
  }

  private startAll(): void {
    for (const node of this.nodes.values()) {
      this.startNode(node);
      this.queue.push(this.random.int(0, node.tickIntervalMs - 1), { kind: 'tick', node: node.id, incarnation: node.incarnation });
    }
    this.workload.start(this.workloadHost());
  }

  private startNode(node: SimNode<M>): void {
    const options: EngineOptions = {
      id: node.id,
      // Spares join empty and learn the membership from the log.
      initialMembership: { voters: this.initialVoters.includes(node.id) ? [...this.initialVoters] : [], learners: [] },
      random: this.random.fork(),
      ...this.tuning,
    };
    node.start((restored) => this.options.factory.create(options, restored), this.monitor);
    node.observe(this.context());
  }

  private onTick(id: NodeId, incarnation: number): void {
    const node = this.nodeOf(id);
    if (!node.up || node.incarnation !== incarnation) return;
    this.trace.update(`${this.nowMs}t${id};`);
    node.tick(this.context(), this.compactionEntriesMin);
    node.observe(this.context());
    this.queue.push(this.nowMs + node.tickIntervalMs, { kind: 'tick', node: id, incarnation });
  }

  private onDeliver(to: NodeId, message: M): void {
    const node = this.nodeOf(to);
    // A partition also cuts what was already on the wire, as a dropped connection would.
    if (!node.up || this.network.isBlocked(message.from, to)) return;
    this.counters.messagesDelivered += 1;
    this.trace.update(`${this.nowMs}m${message.type}${message.from}>${to}@${message.epoch};`);
    node.step(this.context(), message);
    node.observe(this.context());
  }

  private onClientRequest(id: NodeId, request: ClientRequest): void {
    const node = this.nodeOf(id);
    if (!node.up) return;
    this.trace.update(`${this.nowMs}q${request.requestId}>${id};`);
    node.handleRequest(this.context(), request);
    node.observe(this.context());
  }

  /** Sends a copy through the wire format: the engine's own parser must accept what it sends. */
  private send(message: M): void {
    if (!this.nodes.has(message.to) || message.to === message.from) return;
    this.counters.messagesSent += 1;
    for (const delayMs of this.network.route(message.from, message.to)) {
      const parsed = this.options.factory.parseMessage(structuredClone(message));
      if (!parsed.ok) throw new ViolationError('engine-error', `${message.from} sent a ${message.type} its own parser rejects: ${parsed.error.message}`);
      this.queue.push(this.nowMs + delayMs, { kind: 'deliver', to: message.to, message: parsed.data });
    }
  }

  private context(): NodeContext<M> {
    return {
      nowMs: this.nowMs,
      monitor: this.monitor,
      readMode: this.readMode,
      send: (message) => this.send(message),
      reply: (reply) => this.queue.push(this.nowMs + this.network.clientDelayMs(), { kind: 'client-reply', reply }),
    };
  }

  private workloadHost(): WorkloadHost {
    return {
      nowMs: this.nowMs,
      schedule: (delayMs, timer) => this.queue.push(this.nowMs + delayMs, { kind: 'client-timer', timer }),
      send: (node, request) => this.queue.push(this.nowMs + this.network.clientDelayMs(), { kind: 'client-request', node, request }),
    };
  }

  private applyFault(action: FaultAction): void {
    this.trace.update(`${this.nowMs}f${action.type};`);
    switch (action.type) {
      case 'heal':
        return this.network.heal();
      case 'partition-random':
        return this.partitionRandom();
      case 'isolate-leader':
        return this.isolateLeader();
      case 'partition-one-way':
        return this.partitionOneWay();
      case 'crash':
        return this.crash(action.target, action.downMs);
      case 'membership-change':
        return this.changeMembership();
    }
  }

  private partitionRandom(): void {
    const ids = this.shuffled([...this.nodes.keys()]);
    const cut = this.random.int(1, ids.length - 1);
    this.network.partition([ids.slice(0, cut), ids.slice(cut)]);
    this.counters.partitions += 1;
  }

  private isolateLeader(): void {
    const ids = [...this.nodes.keys()];
    const victim = this.currentLeader()?.id ?? this.pick(ids);
    this.network.partition([[victim], ids.filter((id) => id !== victim)]);
    this.counters.partitions += 1;
  }

  private partitionOneWay(): void {
    const ids = [...this.nodes.keys()];
    const victim = this.pick(ids);
    const others = ids.filter((id) => id !== victim);
    if (this.random.chance(0.5)) this.network.blockOneWay(victim, others);
    else for (const other of others) this.network.blockOneWay(other, [victim]);
    this.counters.partitions += 1;
  }

  private crash(target: 'leader' | 'any', downMs: number): void {
    const upNodes = [...this.nodes.values()].filter((node) => node.up);
    const victim = (target === 'leader' ? this.currentLeader() : null) ?? (upNodes.length > 0 ? this.pick(upNodes) : null);
    if (victim === null) return;
    this.trace.update(`x${victim.id};`);
    victim.crash(this.monitor);
    this.counters.crashes += 1;
    this.queue.push(this.nowMs + downMs, { kind: 'restart', node: victim.id });
  }

  private restart(id: NodeId): void {
    const node = this.nodeOf(id);
    if (node.up) return;
    this.trace.update(`${this.nowMs}s${id};`);
    this.startNode(node);
    this.queue.push(this.nowMs + this.random.int(0, node.tickIntervalMs - 1), { kind: 'tick', node: id, incarnation: node.incarnation });
  }

  /** The end of the fault phase: heal the network and bring every node back, so retries can finish. */
  private settle(): void {
    this.trace.update(`${this.nowMs}settle;`);
    this.network.heal();
    for (const node of this.nodes.values()) if (!node.up) this.restart(node.id);
  }

  private changeMembership(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const change = this.drawMembershipChange(leader);
    if (change === null) return;
    this.trace.update(`${this.nowMs}c${change.type}${change.node};`);
    const proposed = leader.engine.changeMembership(change);
    if (proposed.ok) {
      this.counters.membershipChangesProposed += 1;
      if (change.type === 'remove-node') this.removedNodes.add(change.node);
    }
    leader.drain(this.context());
    leader.observe(this.context());
  }

  /** A change the leader may accept; removals keep at least three voters so the cluster can still lose one. */
  private drawMembershipChange(leader: SimNode<M>): MembershipChange | null {
    const status = leader.engine.status(this.nowMs);
    const members = new Set([...status.voters, ...status.learners]);
    const outsiders = [...this.nodes.keys()].filter((id) => !members.has(id) && !this.removedNodes.has(id));
    const changes: MembershipChange[] = [];
    for (const node of outsiders) changes.push({ type: 'add-learner', node }, { type: 'add-voter', node });
    for (const node of status.learners) changes.push({ type: 'promote-learner', node }, { type: 'remove-node', node });
    if (status.voters.length > 3) for (const node of status.voters) changes.push({ type: 'remove-node', node });
    return changes.length === 0 ? null : this.pick(changes);
  }

  /** The up node that believes it leads the highest epoch. */
  private currentLeader(): SimNode<M> | null {
    let leader: SimNode<M> | null = null;
    let leaderEpoch = -1;
    for (const node of this.nodes.values()) {
      if (!node.up) continue;
      const status = node.engine.status(this.nowMs);
      if (status.role === 'leader' && status.epoch > leaderEpoch) {
        leader = node;
        leaderEpoch = status.epoch;
      }
    }
    return leader;
  }

  /** Replicas at one applied index must hold one state. */
  private checkReplicasAgree(): void {
    const byIndex = new Map<number, { node: NodeId; hash: string }>();
    for (const node of this.nodes.values()) {
      if (!node.up) continue;
      const hash = node.kv.stateHash();
      const seen = byIndex.get(node.kv.appliedIndex);
      if (seen === undefined) byIndex.set(node.kv.appliedIndex, { node: node.id, hash });
      else if (seen.hash !== hash) {
        throw new ViolationError('replica-divergence', `${seen.node} and ${node.id} differ at applied index ${node.kv.appliedIndex}`);
      }
    }
  }

  private toViolation(error: unknown): SimViolation {
    if (error instanceof ViolationError) return { kind: error.kind, message: error.message, atMs: this.nowMs, step: this.steps };
    const text = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack?.split('\n').slice(1, 6).join('\n') ?? ''}` : String(error);
    return { kind: 'engine-error', message: text, atMs: this.nowMs, step: this.steps };
  }

  private result(violation: SimViolation | null, linearizability: SimStats['linearizability']): SimRunResult {
    const history = this.workload.history;
    let compactions = 0;
    for (const node of this.nodes.values()) compactions += node.compactions;
    return {
      engine: this.options.engineName,
      family: this.options.family,
      seed: this.options.seed,
      ok: violation === null,
      violation,
      replay: replayCommand({
        engineName: this.options.engineName,
        family: this.options.family,
        seed: this.options.seed,
        nodes: this.options.nodes,
        stepsMax: this.options.stepsMax,
      }),
      traceHash: this.trace.digest().toString(16).padStart(16, '0'),
      stats: {
        steps: this.steps,
        virtualMs: this.nowMs,
        nodes: this.initialVoters.length,
        readMode: this.readMode,
        ...this.counters,
        compactions,
        leaderEpochs: this.monitor.leaderEpochs,
        committedEntries: this.monitor.committedCount,
        operations: history.length,
        operationsCompleted: history.filter((operation) => operation.output !== null).length,
        linearizability,
      },
      history: this.options.keepHistory === true ? history : null,
    };
  }

  private nodeOf(id: NodeId): SimNode<M> {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`unknown node ${id}`);
    return node;
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.random.int(0, items.length - 1)] as T;
  }

  /** Fisher–Yates with the run's generator. */
  private shuffled<T>(items: T[]): T[] {
    for (let index = items.length - 1; index > 0; index -= 1) {
      const other = this.random.int(0, index);
      [items[index], items[other]] = [items[other] as T, items[index] as T];
    }
    return items;
  }
}
