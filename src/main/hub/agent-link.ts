import { io, type Socket } from 'socket.io-client';
import {
  AgentHelloSchema,
  CommandAckSchema,
  err,
  type Command,
  type CommandAck,
  ClusterEventSchema,
  StatusBatchSchema,
  parse,
  type AgentHello,
  type AgentToHubEvents,
  type ClusterEvent,
  type HubToAgentEvents,
  type LinkSummary,
  type StatusSample,
} from '../../shared/protocol';
import type { Clock, Logger } from '../../shared/logger';

export const linkReconnectDelayMsMin = 250;
export const linkReconnectDelayMsMax = 5_000;
/** A link with no status for this many status intervals is stale. */
export const linkStaleIntervals = 3;
/** A link disconnected for this long is unreachable. */
export const linkUnreachableAfterMs = 5_000;

export interface AgentLinkListener {
  hello(link: AgentLink, hello: AgentHello): void;
  samples(link: AgentLink, samples: StatusSample[]): void;
  event(link: AgentLink, event: ClusterEvent): void;
  changed(link: AgentLink): void;
}

function endpointUrl(endpoint: string): string {
  return /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
}

/**
 * One socket.io connection from the hub to one agent. Everything the agent
 * sends is validated here, at the trust boundary; what fails validation is
 * logged and dropped, never passed on.
 */
export class AgentLink {
  private readonly socket: Socket<AgentToHubEvents, HubToAgentEvents>;
  private helloMessage: AgentHello | null = null;
  private lastBatchAtMs: number | null = null;
  private disconnectedSinceMs: number;
  private refusedReason: string | null = null;
  private lastError: string | null = null;
  private invalidMessages = 0;

  constructor(
    readonly endpoint: string,
    token: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly listener: AgentLinkListener,
  ) {
    this.disconnectedSinceMs = clock.nowMs();
    this.socket = io(endpointUrl(endpoint), {
      auth: { token },
      transports: ['websocket'],
      reconnectionDelay: linkReconnectDelayMsMin,
      reconnectionDelayMax: linkReconnectDelayMsMax,
      timeout: 2_000,
    });
    this.socket.on('connect', () => {
      this.refusedReason = null;
      this.lastError = null;
      this.listener.changed(this);
    });
    this.socket.on('disconnect', (reason) => {
      this.disconnectedSinceMs = this.clock.nowMs();
      this.lastError = `disconnected: ${reason}`;
      this.listener.changed(this);
    });
    this.socket.on('connect_error', (error) => {
      // The server refused the handshake (bad token): socket.io does not retry those.
      if (!this.socket.active) this.refusedReason = error.message;
      this.lastError = error.message;
      this.listener.changed(this);
    });
    this.socket.on('agent:hello', (input) => this.onHello(input));
    this.socket.on('status:batch', (input) => this.onBatch(input));
    this.socket.on('cluster:event', (input) => this.onEvent(input));
  }

  get hello(): AgentHello | null {
    return this.helloMessage;
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  summary(): LinkSummary {
    return {
      endpoint: this.endpoint,
      state: this.state(),
      nodeId: this.helloMessage?.nodeId ?? null,
      detail: this.refusedReason ?? (this.socket.connected ? null : this.lastError),
    };
  }

  state(): LinkSummary['state'] {
    const nowMs = this.clock.nowMs();
    if (this.refusedReason !== null) return 'refused';
    if (!this.socket.connected) {
      return nowMs - this.disconnectedSinceMs >= linkUnreachableAfterMs ? 'unreachable' : 'connecting';
    }
    if (this.helloMessage === null) return 'connecting';
    const staleAfterMs = linkStaleIntervals * this.helloMessage.statusIntervalMs;
    const sinceMs = nowMs - (this.lastBatchAtMs ?? this.disconnectedSinceMs);
    return sinceMs > staleAfterMs ? 'stale' : 'connected';
  }

  /** Sends an operator command and waits for the agent's typed answer. */
  async command(command: Command, timeoutMs: number): Promise<CommandAck> {
    if (!this.socket.connected) return err('unreachable', `${this.helloMessage?.nodeId ?? this.endpoint} is not connected`);
    try {
      const answer: unknown = await this.socket.timeout(timeoutMs).emitWithAck('command:request', command);
      const parsed = parse(CommandAckSchema, answer, 'ack');
      return parsed.ok ? (parsed.data as CommandAck) : parsed;
    } catch {
      return err('timeout', `${this.helloMessage?.nodeId ?? this.endpoint} did not answer within ${timeoutMs} ms`);
    }
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }

  private onHello(input: unknown): void {
    const parsed = parse(AgentHelloSchema, input, 'hello');
    if (!parsed.ok) return this.reject(parsed.error.message);
    this.helloMessage = parsed.data;
    this.lastBatchAtMs = this.clock.nowMs();
    this.listener.hello(this, parsed.data);
    this.listener.changed(this);
  }

  private onBatch(input: unknown): void {
    const parsed = parse(StatusBatchSchema, input, 'status');
    if (!parsed.ok) return this.reject(parsed.error.message);
    this.lastBatchAtMs = this.clock.nowMs();
    this.listener.samples(this, parsed.data);
  }

  private onEvent(input: unknown): void {
    const parsed = parse(ClusterEventSchema, input, 'event');
    if (!parsed.ok) return this.reject(parsed.error.message);
    this.listener.event(this, parsed.data);
  }

  private reject(message: string): void {
    this.invalidMessages += 1;
    // Log only the first few: a broken agent must not flood the log.
    if (this.invalidMessages <= 5) this.logger.warn({ endpoint: this.endpoint }, message);
  }
}
