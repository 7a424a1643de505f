import { err, type ClusterEvent, type Command, type CommandAck, type EventBody, type NodeStatus, type Result } from '../../shared/protocol';
import type { Clock } from '../../shared/logger';
import type { IntegrityEngine } from '../integrity/engine';
import type { KvOperation, KvOutput } from '../kv/command';
import type { AgentConfig } from './config';
import type { ClientSession, NodeService } from './service';

/**
 * The node as the HTTP API and telemetry see it, from the first moment the
 * agent listens: before the engine runs (storage still under repair) it
 * answers 503 `not_serving` with the reason and a status that says so; once
 * the host is attached it is a pass-through.
 */
export class NodeGate implements NodeService {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly engine = 'raft' as const;
  readonly drillsAllowed: boolean;
  readonly bootId: string;

  private host: NodeService | null = null;
  private readonly listeners = new Set<(event: ClusterEvent) => void>();
  private readonly startedAtMs: number;
  private eventSequence = 0;
  private readonly stopIntegrityEvents: () => void;

  constructor(private readonly parts: { config: AgentConfig; bootId: string; clock: Clock; integrity: IntegrityEngine }) {
    this.nodeId = parts.config.nodeId;
    this.clusterId = parts.config.clusterId;
    this.drillsAllowed = parts.config.allowDrills;
    this.bootId = parts.bootId;
    this.startedAtMs = parts.clock.nowMs();
    // Until the host exists, integrity findings and repairs on start are published from here.
    this.stopIntegrityEvents = parts.integrity.onEvent((body) => this.publish(body));
  }

  attach(host: NodeService): void {
    this.stopIntegrityEvents();
    this.host = host;
    host.onEvent((event) => {
      for (const listener of this.listeners) listener(event);
    });
  }

  status(): NodeStatus {
    if (this.host !== null) return this.host.status();
    return {
      nodeId: this.nodeId,
      clusterId: this.clusterId,
      engine: this.engine,
      role: 'offline',
      epoch: 0,
      epochLabel: 'repairing',
      leader: null,
      lastIndex: 0,
      commitIndex: 0,
      appliedIndex: 0,
      voters: this.parts.config.peers.map((peer) => peer.id),
      learners: [],
      followers: [],
      transferringTo: null,
      integrity: this.parts.integrity.status(),
      storage: null,
      process: { pid: process.pid, rssBytes: process.memoryUsage.rss(), cpuPercent: 0, uptimeMs: this.parts.clock.nowMs() - this.startedAtMs },
      drillsAllowed: this.drillsAllowed,
      activeDrills: [],
    };
  }

  submit(operation: KvOperation, session: ClientSession | null): Promise<Result<{ index: number; output: KvOutput }>> {
    return this.host?.submit(operation, session) ?? Promise.resolve(this.notServing());
  }

  read(key: string, linearizable: boolean): Promise<Result<{ value: string | null; index: number }>> {
    return this.host?.read(key, linearizable) ?? Promise.resolve(this.notServing());
  }

  async command(command: Command): Promise<CommandAck> {
    if (this.host !== null) return this.host.command(command);
    return this.notServing();
  }

  onEvent(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notServing(): Result<never> {
    return err('not_serving', `${this.nodeId} is not serving: ${this.parts.integrity.notServingReason() ?? 'storage is being repaired'}`);
  }

  private publish(body: EventBody): void {
    const event: ClusterEvent = { id: `${this.nodeId}:${this.bootId}:gate-${(this.eventSequence += 1)}`, atMs: this.parts.clock.nowMs(), nodeId: this.nodeId, body };
    for (const listener of this.listeners) listener(event);
  }
}
