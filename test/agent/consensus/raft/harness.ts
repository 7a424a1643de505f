/**
 * An in-memory cluster of Raft engines for tests: it plays the host of the
 * driver loop (ready → persist → send → apply → advance), delivers messages
 * through `parseMessage` like a real transport would, and can partition,
 * restart and compact nodes. Every action can be traced as text, which the
 * data-driven scenarios in testdata/ check.
 */
import type { NodeId } from '../../../../src/shared/protocol';
import { createRandom } from '../../../../src/shared/random';
import type { EngineOptions, Entry, HardState, Membership, Ready, RestoredState, Snapshot } from '../../../../src/agent/consensus/engine';
import {
  RaftEngine,
  createRaftFactory,
  decodeConfigEntry,
  type RaftEngineClass,
  type RaftMessage,
} from '../../../../src/agent/consensus/raft';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Rounds of ready/deliver before `stabilize` gives up: a live-lock in a test, not a slow cluster. */
export const stabilizeRoundsMax = 10_000;

export interface NodeStorage {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  entries: Entry[];
}

export interface TestNode {
  readonly id: NodeId;
  engine: RaftEngine;
  readonly options: EngineOptions;
  readonly storage: NodeStorage;
  /** The replicated state machine: the data of every applied normal entry, in order. */
  applied: string[];
  appliedIndex: number;
  /** The membership as of the applied index, to build snapshots. */
  appliedMembership: Membership;
}

export interface ClusterOptions {
  readonly seed: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly inflightAppendsMax: number;
  readonly appendBytesMax: number;
  readonly tickIntervalMs: number;
  /** Run every message through parseMessage, as a transport does. */
  readonly validateMessages: boolean;
  readonly EngineClass: RaftEngineClass;
}

export const defaultClusterOptions: ClusterOptions = {
  seed: 1,
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  preVote: false,
  checkQuorum: false,
  inflightAppendsMax: 256,
  appendBytesMax: 1024 * 1024,
  tickIntervalMs: 100,
  validateMessages: true,
  EngineClass: RaftEngine,
};

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  private queue: RaftMessage[] = [];
  /** Partition groups; a node in no group is cut off from every other. Null when healed. */
  private groups: NodeId[][] | null = null;
  nowMs = 0;
  private readonly factory;

  constructor(readonly options: ClusterOptions = defaultClusterOptions) {
    this.factory = createRaftFactory(options.EngineClass);
  }

  addNode(
    id: NodeId,
    membership: Membership,
    overrides: Partial<ClusterOptions> = {},
    restored: RestoredState = { hardState: null, snapshot: null, entries: [] },
  ): TestNode {
    const settings = { ...this.options, ...overrides };
    const options: EngineOptions = {
      id,
      initialMembership: membership,
      random: createRandom(settings.seed * 1000 + this.nodes.size),
      electionTimeoutTicks: settings.electionTimeoutTicks,
      heartbeatIntervalTicks: settings.heartbeatIntervalTicks,
      preVote: settings.preVote,
      checkQuorum: settings.checkQuorum,
      inflightAppendsMax: settings.inflightAppendsMax,
      appendBytesMax: settings.appendBytesMax,
      tickIntervalMs: settings.tickIntervalMs,
    };
    const storage: NodeStorage = { hardState: restored.hardState, snapshot: restored.snapshot, entries: [...restored.entries] };
    const engine = createRaftFactory(settings.EngineClass).create(options, restored) as RaftEngine;
    const node: TestNode = { id, engine, options, storage, applied: [], appliedIndex: 0, appliedMembership: membership };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }

  partition(groups: NodeId[][]): void {
    this.groups = groups;
  }

  heal(): void {
    this.groups = null;
  }

  canReach(from: NodeId, to: NodeId): boolean {
    if (this.groups === null) return true;
    const group = this.groups.find((members) => members.includes(from));
    return group !== undefined && group.includes(to);
  }

  tick(count: number, ids: NodeId[] = this.ids()): void {
    for (let round = 0; round < count; round += 1) {
      for (const id of ids) this.node(id).engine.tick();
      this.nowMs += this.options.tickIntervalMs;
    }
  }

  /** Handles one Ready of `id` as a host would; returns trace lines. */
  processReady(id: NodeId): string[] {
    const node = this.node(id);
    const ready = node.engine.ready();
    this.persist(node, ready);
    for (const message of ready.messages) this.queue.push(message);
    this.apply(node, ready);
    node.engine.advance(ready);
    return formatReady(id, ready);
  }

  private persist(node: TestNode, ready: Ready<RaftMessage>): void {
    const storage = node.storage;
    if (ready.snapshot !== null) {
      storage.snapshot = ready.snapshot;
      storage.entries = storage.entries.filter((entry) => entry.index > (ready.snapshot as Snapshot).meta.index);
      node.applied = decodeStateMachine(ready.snapshot.data);
      node.appliedIndex = ready.snapshot.meta.index;
      node.appliedMembership = ready.snapshot.meta.membership;
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      const keep = storage.entries.findIndex((entry) => entry.index >= first.index);
      if (keep !== -1) storage.entries.length = keep;
      for (const entry of ready.entries) storage.entries.push(entry);
    }
    if (ready.hardState !== null) storage.hardState = ready.hardState;
  }

  private apply(node: TestNode, ready: Ready<RaftMessage>): void {
    for (const entry of ready.committedEntries) {
      if (entry.index !== node.appliedIndex + 1) {
        throw new Error(`node ${node.id}: applying ${entry.index} after ${node.appliedIndex}`);
      }
      if (entry.kind === 'normal') node.applied.push(textDecoder.decode(entry.data));
      if (entry.kind === 'config') {
        const decoded = decodeConfigEntry(entry.data);
        if (decoded.ok) node.appliedMembership = decoded.data.membership;
      }
      node.appliedIndex = entry.index;
    }
  }

  /** Delivers queued messages addressed to `ids`, in order; returns trace lines for dropped ones. */
  deliver(ids: NodeId[] = this.ids()): string[] {
    const lines: string[] = [];
    const pending = this.queue;
    this.queue = [];
    for (const message of pending) {
      if (!ids.includes(message.to)) {
        this.queue.push(message);
        continue;
      }
      if (!this.nodes.has(message.to) || !this.canReach(message.from, message.to)) {
        lines.push(`dropped ${formatMessage(message)}`);
        continue;
      }
      this.node(message.to).engine.step(this.validate(message));
    }
    return lines;
  }

  private validate(message: RaftMessage): RaftMessage {
    if (!this.options.validateMessages) return message;
    const parsed = this.factory.parseMessage(message);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.data;
  }

  /** Readies and delivers until nothing moves; returns the trace. */
  stabilize(ids: NodeId[] = this.ids()): string[] {
    const lines: string[] = [];
    for (let round = 0; round < stabilizeRoundsMax; round += 1) {
      let moved = false;
      for (const id of ids) {
        if (!this.node(id).engine.hasReady()) continue;
        const readyLines = this.processReady(id);
        if (readyLines.length > 1) lines.push(...readyLines);
        moved = true;
      }
      const hadMessages = this.queue.some((message) => ids.includes(message.to));
      lines.push(...this.deliver(ids));
      if (!moved && !hadMessages) return lines;
    }
    throw new Error(`stabilize did not settle within ${stabilizeRoundsMax} rounds`);
  }

  /** Recreates `id` from what it persisted, as after a crash. */
  restart(id: NodeId): void {
    const node = this.node(id);
    const restored = {
      hardState: node.storage.hardState,
      snapshot: node.storage.snapshot,
      entries: [...node.storage.entries],
    };
    this.queue = this.queue.filter((message) => message.to !== id);
    node.engine = this.factory.create(node.options, restored) as RaftEngine;
    const snapshot = node.storage.snapshot;
    node.applied = snapshot === null ? [] : decodeStateMachine(snapshot.data);
    node.appliedIndex = snapshot === null ? 0 : snapshot.meta.index;
    node.appliedMembership = snapshot === null ? node.options.initialMembership : snapshot.meta.membership;
  }

  /** Snapshots `id`'s applied state at its applied index and compacts its log there. */
  compact(id: NodeId, index: number): string {
    const node = this.node(id);
    // The harness only has the state machine as of the applied index; a later
    // index is passed on so that the engine's own refusal shows.
    if (index < node.appliedIndex) return `error: the harness snapshots at the applied index ${node.appliedIndex}`;
    const entry = node.storage.entries.find((stored) => stored.index === index);
    const epoch = entry?.epoch ?? node.storage.snapshot?.meta.epoch ?? 0;
    const snapshot: Snapshot = {
      meta: { index, epoch, membership: node.appliedMembership },
      data: encodeStateMachine(node.applied),
    };
    const result = node.engine.compact(snapshot);
    if (!result.ok) return `error ${result.error.code}: ${result.error.message}`;
    node.storage.snapshot = snapshot;
    node.storage.entries = node.storage.entries.filter((stored) => stored.index > index);
    return 'ok';
  }

  pendingMessages(): readonly RaftMessage[] {
    return this.queue;
  }

  /** Removes queued messages matching `predicate` (a lost packet); returns how many. */
  dropMessages(predicate: (message: RaftMessage) => boolean): number {
    const before = this.queue.length;
    this.queue = this.queue.filter((message) => !predicate(message));
    return before - this.queue.length;
  }

  leaders(): NodeId[] {
    return this.ids().filter((id) => this.node(id).engine.raftRole() === 'leader');
  }
}

export function encodeStateMachine(applied: readonly string[]): Uint8Array {
  return textEncoder.encode(JSON.stringify(applied));
}

export function decodeStateMachine(data: Uint8Array): string[] {
  return JSON.parse(textDecoder.decode(data)) as string[];
}

export function bytes(text: string): Uint8Array {
  return textEncoder.encode(text);
}

// ---------------------------------------------------------------------------
// Trace formatting.

export function formatEntry(entry: Entry): string {
  const at = `${entry.index}@${entry.epoch}`;
  if (entry.kind === 'noop') return `${at} noop`;
  if (entry.kind === 'config') {
    const decoded = decodeConfigEntry(entry.data);
    return `${at} config(${decoded.ok ? decoded.data.change : 'invalid'})`;
  }
  return `${at} ${JSON.stringify(textDecoder.decode(entry.data))}`;
}

export function formatMessage(message: RaftMessage): string {
  const head = `${message.from}->${message.to} ${message.type} term=${message.epoch}`;
  switch (message.type) {
    case 'append':
      return `${head} prev=${message.previousIndex}@${message.previousTerm} commit=${message.commit} [${message.entries.map(formatEntry).join(', ')}]`;
    case 'append-response':
      return message.reject
        ? `${head} reject index=${message.index} hint=${message.hintIndex}@${message.hintTerm}`
        : `${head} index=${message.index}`;
    case 'heartbeat':
      return `${head} commit=${message.commit}${message.readContext === 0 ? '' : ` read=${message.readContext}`}`;
    case 'heartbeat-response':
      return `${head}${message.readContext === 0 ? '' : ` read=${message.readContext}`}`;
    case 'vote':
    case 'pre-vote':
      return `${head} last=${message.lastIndex}@${message.lastTerm}${message.transfer ? ' transfer' : ''}`;
    case 'vote-response':
    case 'pre-vote-response':
      return `${head} ${message.reject ? 'rejected' : 'granted'}`;
    case 'snapshot': {
      const { meta } = message.snapshot;
      return `${head} index=${meta.index}@${meta.epoch} voters=${meta.membership.voters.join(',')} learners=${meta.membership.learners.join(',')}`;
    }
    case 'timeout-now':
      return head;
    case 'read-index':
      return `${head} id=${message.requestId}`;
    case 'read-index-response':
      return `${head} id=${message.requestId} index=${message.index}`;
  }
}

export function formatValue(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  if (value === null) return 'none';
  return String(value);
}

export function formatReady(id: NodeId, ready: Ready<RaftMessage>): string[] {
  const lines = [`> ${id} ready`];
  if (ready.hardState !== null) {
    const { term, vote, commit } = ready.hardState;
    lines.push(`  hardstate term=${term} vote=${formatValue(vote)} commit=${commit}`);
  }
  if (ready.snapshot !== null) {
    const { meta } = ready.snapshot;
    lines.push(`  snapshot ${meta.index}@${meta.epoch} voters=${meta.membership.voters.join(',')} learners=${meta.membership.learners.join(',')}`);
  }
  for (const entry of ready.entries) lines.push(`  persist ${formatEntry(entry)}`);
  for (const message of ready.messages) lines.push(`  send ${formatMessage(message)}`);
  for (const entry of ready.committedEntries) lines.push(`  apply ${formatEntry(entry)}`);
  for (const read of ready.readStates) lines.push(`  read ${read.requestId} index=${read.index}`);
  for (const event of ready.events) {
    const fields = Object.entries(event)
      .filter(([key]) => key !== 'type')
      .map(([key, value]) => `${key}=${formatValue(value)}`);
    lines.push(`  event ${event.type} ${fields.join(' ')}`);
  }
  return lines;
}

export function formatStatus(cluster: Cluster, id: NodeId): string[] {
  const status = cluster.node(id).engine.status(cluster.nowMs);
  const lines = [
    `role=${status.role} ${status.epochLabel} leader=${formatValue(status.leader)} last=${status.lastIndex} ` +
      `commit=${status.commitIndex} applied=${status.appliedIndex} voters=${status.voters.join(',')} ` +
      `learners=${status.learners.join(',')} transferring=${formatValue(status.transferringTo)}`,
  ];
  for (const follower of status.followers) {
    lines.push(
      `  ${follower.nodeId}: ${follower.voter ? 'voter' : 'learner'} ${follower.state} match=${follower.matchIndex} ` +
        `next=${follower.nextIndex} lag=${follower.lagEntries} lagMs=${follower.lagMs} contactMs=${formatValue(follower.lastContactMs)}`,
    );
  }
  return lines;
}

/** A cluster of `count` voters named 1..count, none elected yet. */
export function newCluster(count: number, overrides: Partial<ClusterOptions> = {}): Cluster {
  const cluster = new Cluster({ ...defaultClusterOptions, ...overrides });
  const ids = Array.from({ length: count }, (_, position) => String(position + 1));
  for (const id of ids) cluster.addNode(id, { voters: ids, learners: [] });
  return cluster;
}

/** A cluster in which node 1 campaigned and won. */
export function electedCluster(count: number, overrides: Partial<ClusterOptions> = {}): Cluster {
  const cluster = newCluster(count, overrides);
  cluster.node('1').engine.campaign();
  cluster.stabilize();
  if (cluster.leaders().join(',') !== '1') throw new Error(`expected node 1 to lead, got ${cluster.leaders().join(',')}`);
  return cluster;
}

/**
 * Options for one engine of the behaviour tests: 3 voters, fixed timeouts, no
 * PreVote or CheckQuorum unless overridden, a PRNG seeded by the node's id.
 */
export function engineOptionsFor(id: string, overrides: Partial<EngineOptions> = {}, voters: readonly string[] = ['1', '2', '3']): EngineOptions {
  return {
    id,
    initialMembership: { voters: [...voters], learners: [] },
    random: createRandom(Number(id) || 7),
    electionTimeoutTicks: defaultClusterOptions.electionTimeoutTicks,
    heartbeatIntervalTicks: defaultClusterOptions.heartbeatIntervalTicks,
    preVote: false,
    checkQuorum: false,
    inflightAppendsMax: defaultClusterOptions.inflightAppendsMax,
    appendBytesMax: defaultClusterOptions.appendBytesMax,
    tickIntervalMs: defaultClusterOptions.tickIntervalMs,
    ...overrides,
  };
}

/** Fresh engines wired to nothing, for in-memory runs that pump messages by hand (the throughput test and benchmark). */
export function freshEngines(ids: readonly string[], overrides: Partial<EngineOptions> = {}): Map<string, RaftEngine> {
  return new Map(ids.map((id) => [id, new RaftEngine(engineOptionsFor(id, { preVote: true, checkQuorum: true, ...overrides }, ids), { hardState: null, snapshot: null, entries: [] })]));
}

/** Takes everything out of a lone engine, as a host would, and returns the messages. */
export function drain(engine: RaftEngine): RaftMessage[] {
  const messages: RaftMessage[] = [];
  while (engine.hasReady()) {
    const ready = engine.ready();
    messages.push(...ready.messages);
    engine.advance(ready);
  }
  return messages;
}

/**
 * Pumps Ready → deliver rounds over in-memory engines (no storage, no network,
 * no validation) until nothing moves; `applied` sees every committed entry.
 */
export function settle(engines: ReadonlyMap<string, RaftEngine>, applied: (id: string, entry: Entry) => void, roundsMax = 1_000): void {
  let queue: RaftMessage[] = [];
  for (let round = 0; round < roundsMax; round += 1) {
    let moved = false;
    for (const [id, engine] of engines) {
      if (!engine.hasReady()) continue;
      const ready = engine.ready();
      for (const message of ready.messages) queue.push(message);
      for (const entry of ready.committedEntries) applied(id, entry);
      engine.advance(ready);
      moved = true;
    }
    const delivering = queue;
    queue = [];
    for (const message of delivering) engines.get(message.to)?.step(message);
    if (!moved && delivering.length === 0) return;
  }
  throw new Error(`the cluster did not settle within ${roundsMax} rounds`);
}
