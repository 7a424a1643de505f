/**
 * Concurrent clients of the replicated KV store. Each client runs one
 * operation at a time (put/get/delete/cas on a few shared keys), retries it
 * with the same sequence number on timeouts and "not leader" answers, and
 * records it in the history with its virtual invoke and return times. An
 * operation that never gets a definite answer stays indeterminate.
 */
import type { KvCommand, KvOperation, KvOutput } from '../agent/kv';
import type { NodeId } from '../shared/protocol';
import type { SeededRandom } from '../shared/random';
import type { HistoryOperation } from './linearizability';

export interface ClientRequest {
  /** Unique per attempt; also the ReadIndex request id. */
  readonly requestId: string;
  /** Numbers the client's operations; every attempt of one operation carries the same. */
  readonly operationNumber: number;
  /** Operations that go through the log carry a session sequence number; reads served by ReadIndex do not. */
  readonly command: KvCommand;
}

interface ReplyEnvelope {
  readonly requestId: string;
  readonly clientId: string;
  readonly operationNumber: number;
}

export type ClientReply =
  | (ReplyEnvelope & { readonly outcome: 'ok'; readonly output: KvOutput })
  | (ReplyEnvelope & { readonly outcome: 'redirect'; readonly leaderHint: NodeId | null })
  /** The command reached the state machine but was refused (stale or expired session): it may have applied earlier. */
  | (ReplyEnvelope & { readonly outcome: 'refused'; readonly code: string });

export type ClientTimer =
  | { readonly kind: 'client-next'; readonly clientId: string }
  | { readonly kind: 'client-timeout'; readonly clientId: string; readonly requestId: string }
  | { readonly kind: 'client-retry'; readonly clientId: string; readonly requestId: string };

export interface WorkloadHost {
  readonly nowMs: number;
  schedule(delayMs: number, timer: ClientTimer): void;
  send(node: NodeId, request: ClientRequest): void;
}

export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  /** Nodes a client may contact. */
  readonly nodes: readonly NodeId[];
  /** No new operation starts at or after this time; running ones still retry. */
  readonly workloadEndMs: number;
  readonly requestTimeoutMs: number;
  /** Attempts per operation before the client gives up and leaves it indeterminate. */
  readonly attemptsMax: number;
  readonly thinkTimeMsMax: number;
  /** Pause after a "not leader" answer, so a leaderless cluster is not flooded with retries. */
  readonly redirectBackoffMs: number;
  readonly operationsPerClientMax: number;
  /** Send every read to a random node (for the deliberately stale follower-read mode). */
  readonly readsToAnyNode: boolean;
  /** Whether reads are log commands; if not, they take no session sequence number. */
  readonly readsThroughLog: boolean;
}

interface RunningOperation {
  readonly historyIndex: number;
  readonly operationNumber: number;
  readonly command: KvCommand;
  attempts: number;
  requestId: string;
  target: NodeId;
}

interface Client {
  readonly id: string;
  /** The last session sequence number used by a command that goes through the log. */
  sequence: number;
  operations: number;
  leaderHint: NodeId | null;
  running: RunningOperation | null;
  /** The last value this client saw per key, to make compare-and-set hit sometimes. */
  readonly lastSeen: Map<string, string | null>;
}

type MutableOperation = { -readonly [K in keyof HistoryOperation<KvOperation, KvOutput>]: HistoryOperation<KvOperation, KvOutput>[K] };

export class Workload {
  private readonly clients = new Map<string, Client>();
  private readonly operations: MutableOperation[] = [];

  constructor(
    private readonly options: WorkloadOptions,
    private readonly random: SeededRandom,
  ) {
    for (let index = 0; index < options.clients; index += 1) {
      const id = `c${index + 1}`;
      this.clients.set(id, { id, sequence: 0, operations: 0, leaderHint: null, running: null, lastSeen: new Map() });
    }
  }

  get history(): readonly HistoryOperation<KvOperation, KvOutput>[] {
    return this.operations;
  }

  start(host: WorkloadHost): void {
    for (const client of this.clients.values()) host.schedule(this.random.int(0, this.options.thinkTimeMsMax), { kind: 'client-next', clientId: client.id });
  }

  onTimer(host: WorkloadHost, timer: ClientTimer): void {
    const client = this.clients.get(timer.clientId);
    if (client === undefined) return;
    if (timer.kind === 'client-next') this.startNext(host, client);
    else if (client.running?.requestId !== timer.requestId) return;
    else if (timer.kind === 'client-timeout') this.retry(host, client, null);
    else this.attempt(host, client, client.running);
  }

  onReply(host: WorkloadHost, reply: ClientReply): void {
    const client = this.clients.get(reply.clientId);
    const running = client?.running;
    // Any attempt of the running operation may answer it: they are one operation.
    if (client === undefined || running == null || running.operationNumber !== reply.operationNumber) return;
    if (reply.outcome === 'redirect') {
      if (reply.requestId === running.requestId) this.retry(host, client, reply.leaderHint);
      return;
    }
    const operation = this.operations[running.historyIndex] as MutableOperation;
    if (reply.outcome === 'ok') {
      operation.output = reply.output;
      operation.returnMs = host.nowMs;
      this.rememberSeen(client, running.command.operation, reply.output);
    }
    this.finish(host, client);
  }

  private startNext(host: WorkloadHost, client: Client): void {
    if (host.nowMs >= this.options.workloadEndMs || client.operations >= this.options.operationsPerClientMax) return;
    client.operations += 1;
    const operation = this.drawOperation(client);
    const throughLog = operation.type !== 'get' || this.options.readsThroughLog;
    if (throughLog) client.sequence += 1;
    // A read outside the log never reaches the session table; its sequence number is only a placeholder.
    const command: KvCommand = { clientId: client.id, sequence: Math.max(client.sequence, 1), operation };
    this.operations.push({
      id: this.operations.length,
      clientId: client.id,
      key: command.operation.key,
      input: command.operation,
      output: null,
      callMs: host.nowMs,
      returnMs: Number.POSITIVE_INFINITY,
    });
    client.running = { historyIndex: this.operations.length - 1, operationNumber: client.operations, command, attempts: 0, requestId: '', target: this.pickTarget(client, command, null) };
    this.attempt(host, client, client.running);
  }

  private attempt(host: WorkloadHost, client: Client, running: RunningOperation): void {
    running.attempts += 1;
    running.requestId = `${client.id}:${running.operationNumber}:${running.attempts}`;
    host.send(running.target, { requestId: running.requestId, operationNumber: running.operationNumber, command: running.command });
    host.schedule(this.options.requestTimeoutMs, { kind: 'client-timeout', clientId: client.id, requestId: running.requestId });
  }

  private retry(host: WorkloadHost, client: Client, leaderHint: NodeId | null): void {
    const running = client.running;
    if (running === null) return;
    if (running.attempts >= this.options.attemptsMax) {
      this.finish(host, client);
      return;
    }
    client.leaderHint = leaderHint;
    running.target = this.pickTarget(client, running.command, running.target);
    if (leaderHint !== null) {
      this.attempt(host, client, running);
      return;
    }
    // The timer carries the old request id, so a late answer to it still counts.
    host.schedule(this.options.redirectBackoffMs, { kind: 'client-retry', clientId: client.id, requestId: running.requestId });
  }

  /** Ends the running operation; without a recorded answer it stays indeterminate. */
  private finish(host: WorkloadHost, client: Client): void {
    client.running = null;
    host.schedule(this.random.int(1, this.options.thinkTimeMsMax), { kind: 'client-next', clientId: client.id });
  }

  private pickTarget(client: Client, command: KvCommand, previous: NodeId | null): NodeId {
    const nodes = this.options.nodes;
    if (this.options.readsToAnyNode && command.operation.type === 'get') return nodes[this.random.int(0, nodes.length - 1)] as NodeId;
    if (client.leaderHint !== null && client.leaderHint !== previous && nodes.includes(client.leaderHint)) return client.leaderHint;
    if (previous === null) return nodes[this.random.int(0, nodes.length - 1)] as NodeId;
    return nodes[(nodes.indexOf(previous) + 1) % nodes.length] as NodeId;
  }

  private drawOperation(client: Client): KvOperation {
    const key = `k${this.random.int(0, this.options.keys - 1)}`;
    const value = `${client.id}.${client.operations}`;
    const roll = this.random.next();
    if (roll < 0.4) return { type: 'get', key };
    if (roll < 0.7) return { type: 'put', key, value };
    if (roll < 0.8) return { type: 'delete', key };
    const seen = client.lastSeen.get(key);
    const expected = seen !== undefined && this.random.chance(0.7) ? seen : null;
    return { type: 'cas', key, expected, value };
  }

  private rememberSeen(client: Client, operation: KvOperation, output: KvOutput): void {
    if (output.type === 'get' || output.type === 'cas') client.lastSeen.set(operation.key, output.value);
    else if (output.type === 'delete') client.lastSeen.set(operation.key, null);
    else if (operation.type === 'put') client.lastSeen.set(operation.key, operation.value);
  }
}
