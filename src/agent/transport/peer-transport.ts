import { timingSafeEqual } from 'node:crypto';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { NodeId } from '../../shared/protocol/model';
import { err, ok, type Result } from '../../shared/protocol/result';
import type { Logger } from '../../shared/logger';
import { FrameReader, FrameType, decodeFrameBody, encodeClose, encodeFrame, encodeHello, frameHeaderBytes, peerProtocolVersion, type DecodedFrame } from './frame';

/**
 * TCP between agents (see README.md). Each node dials one outbound connection
 * per peer and sends its messages on it; it receives on the connections its
 * peers dial in. Both ends open with a hello; a frame that fails its CRC, its
 * decoding or the validator closes that one connection with a logged reason.
 *
 * Raft, Paxos and Zab all tolerate message loss, so the transport never blocks
 * the engine: sends are fire-and-forget into a bounded per-peer queue.
 */

export interface PeerAddress {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

export interface TransportLimits {
  /** Largest frame body accepted or sent; a larger length closes the connection. */
  readonly frameBytesMax: number;
  /** Per peer; when either bound is exceeded the oldest queued frame is dropped. */
  readonly sendQueueBytesMax: number;
  readonly sendQueueMessagesMax: number;
  /** Reconnect delay grows from min to max (doubling, with jitter) while dials keep failing. */
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
  /** An inbound connection that has not said hello by then is closed. */
  readonly handshakeTimeoutMs: number;
  readonly inboundConnectionsMax: number;
  /** How long a connection being closed gets to flush its close frame before it is destroyed. */
  readonly closeGraceMs: number;
}

export const transportLimitsDefault: TransportLimits = {
  frameBytesMax: 16 * 1024 * 1024,
  sendQueueBytesMax: 64 * 1024 * 1024,
  sendQueueMessagesMax: 4096,
  backoffMsMin: 50,
  backoffMsMax: 5_000,
  handshakeTimeoutMs: 5_000,
  inboundConnectionsMax: 128,
  closeGraceMs: 500,
};

export interface PeerTransportOptions<T> {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly peers: readonly PeerAddress[];
  /** Default bind is loopback: peers on other hosts need an explicit address. */
  readonly host?: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  /** The trust boundary: every decoded message passes this before the handler sees it. */
  readonly parse: (input: unknown) => Result<T>;
  /**
   * Where a message claims to come from and go to. When given, a message whose
   * `from` is not the peer that said hello on the connection, or whose `to` is
   * not this node, is a bad frame.
   */
  readonly addressOf?: (message: T) => { readonly from: string; readonly to: string };
  readonly onMessage?: (message: T, from: NodeId) => void;
  readonly logger: Logger;
  /**
   * The cluster's shared peer secret. When set, both ends of every connection
   * must present it in their hello (compared in constant time); without it the
   * port trusts any peer that names this cluster and a known node.
   */
  readonly peerToken?: string;
  readonly limits?: Partial<TransportLimits>;
  /** Jitter source for backoff; injectable so tests can pin it. */
  readonly random?: () => number;
}

export interface PeerStats {
  readonly connected: boolean;
  readonly queueMessages: number;
  readonly queueBytes: number;
  readonly framesDropped: number;
}

export interface TransportStats {
  readonly framesSent: number;
  readonly framesReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Dropped because a send queue was full (oldest first). */
  readonly framesDroppedQueueFull: number;
  /** Dropped by the isolate drill, in either direction. */
  readonly framesDroppedIsolated: number;
  /** Sends to a node that is not a known peer, or that could not be encoded. */
  readonly framesDroppedUnsendable: number;
  readonly reconnects: number;
  readonly badFrames: number;
  readonly handshakesRejected: number;
  readonly connectionsRejected: number;
  readonly peers: Readonly<Record<NodeId, PeerStats>>;
}

interface QueuedFrame {
  readonly frame: Buffer;
  readonly readyAtMs: number;
}

interface OutboundPeer {
  address: PeerAddress;
  socket: Socket | null;
  /** Set once the peer answered our hello with a matching one. */
  handshaken: boolean;
  writable: boolean;
  queue: QueuedFrame[];
  queueBytes: number;
  failures: number;
  nextDialAtMs: number;
  dialTimer: NodeJS.Timeout | null;
  delayTimer: NodeJS.Timeout | null;
  dials: number;
  framesDropped: number;
  /** Set while writes of this turn of the event loop are being gathered into one syscall. */
  corked: boolean;
}

interface InboundConnection {
  readonly socket: Socket;
  readonly reader: FrameReader;
  readonly remote: string;
  peer: NodeId | null;
  closing: boolean;
  handshakeTimer: NodeJS.Timeout | null;
}

type Counters = { -readonly [K in Exclude<keyof TransportStats, 'peers'>]: number };

export class PeerTransport<T> {
  private readonly limits: TransportLimits;
  private readonly outbound = new Map<NodeId, OutboundPeer>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly counters: Counters = {
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    framesDroppedQueueFull: 0,
    framesDroppedIsolated: 0,
    framesDroppedUnsendable: 0,
    reconnects: 0,
    badFrames: 0,
    handshakesRejected: 0,
    connectionsRejected: 0,
  };
  private handler: (message: T, from: NodeId) => void;
  /** `all` isolates from every peer; null means no isolation. */
  private isolation: ReadonlySet<NodeId> | 'all' | null = null;
  private delayMs = 0;
  private closed = false;
  private readonly helloFrame: Buffer;
  private readonly random: () => number;

  private constructor(
    private readonly options: PeerTransportOptions<T>,
    private readonly server: Server,
  ) {
    this.limits = { ...transportLimitsDefault, ...options.limits };
    this.handler = options.onMessage ?? (() => {});
    this.random = options.random ?? Math.random;
    this.helloFrame = encodeHello({
      clusterId: options.clusterId,
      from: options.nodeId,
      protocolVersion: peerProtocolVersion,
      ...(options.peerToken === undefined ? {} : { token: options.peerToken }),
    });
    for (const peer of options.peers) this.addPeer(peer);
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Starts listening; a bind failure (port in use, bad address) is an error value. */
  static async listen<T>(options: PeerTransportOptions<T>): Promise<Result<PeerTransport<T>>> {
    const server = createServer({ noDelay: true });
    const transport = new PeerTransport(options, server);
    const host = options.host ?? '127.0.0.1';
    const listening = await new Promise<Result<null>>((resolve) => {
      const onError = (error: Error) => resolve(err('transport_listen_failed', `cannot listen on ${host}:${options.port}: ${error.message}`));
      server.once('error', onError);
      server.listen(options.port, host, () => {
        server.off('error', onError);
        resolve(ok(null));
      });
    });
    if (!listening.ok) return listening;
    server.on('error', (error) => options.logger.error({ error: error.message }, 'peer listener error'));
    return ok(transport);
  }

  address(): { host: string; port: number } {
    const address = this.server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  onMessage(handler: (message: T, from: NodeId) => void): void {
    this.handler = handler;
  }

  addPeer(peer: PeerAddress): void {
    if (peer.id === this.options.nodeId) return;
    const existing = this.outbound.get(peer.id);
    if (existing !== undefined) {
      if (existing.address.host === peer.host && existing.address.port === peer.port) return;
      // A new address: hang up so that the next dial goes there.
      existing.address = peer;
      existing.socket?.destroy();
      return;
    }
    this.outbound.set(peer.id, {
      address: peer,
      socket: null,
      handshaken: false,
      writable: true,
      queue: [],
      queueBytes: 0,
      failures: 0,
      nextDialAtMs: 0,
      dialTimer: null,
      delayTimer: null,
      dials: 0,
      framesDropped: 0,
      corked: false,
    });
  }

  removePeer(id: NodeId): void {
    const peer = this.outbound.get(id);
    if (peer === undefined) return;
    this.outbound.delete(id);
    this.stopPeer(peer);
    for (const connection of this.inbound) if (connection.peer === id) this.hangUp(connection, 'peer removed from the cluster', false);
  }

  /**
   * Sends `message` to `to` as soon as the connection allows. Never blocks and
   * never throws: a message that cannot go (unknown peer, isolated, queue full)
   * is dropped and counted, which every engine tolerates as message loss.
   */
  send(to: NodeId, message: T): void {
    if (this.closed) return;
    const peer = this.outbound.get(to);
    if (peer === undefined) {
      this.counters.framesDroppedUnsendable += 1;
      return;
    }
    if (this.isIsolated(to)) {
      this.counters.framesDroppedIsolated += 1;
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(FrameType.message, message);
    } catch (error) {
      this.counters.framesDroppedUnsendable += 1;
      this.options.logger.error({ to, error: describe(error) }, 'peer message cannot be encoded; dropped');
      return;
    }
    if (frame.length - frameHeaderBytes > this.limits.frameBytesMax) {
      this.counters.framesDroppedUnsendable += 1;
      this.options.logger.error({ to, frameBytes: frame.length }, 'peer message exceeds frameBytesMax; dropped');
      return;
    }
    peer.queue.push({ frame, readyAtMs: performance.now() + this.delayMs });
    peer.queueBytes += frame.length;
    // Drop the oldest: newer messages carry the newer epoch, commit index and heartbeat, and
    // whatever an older one said is either superseded or retried by the engine.
    while (peer.queue.length > this.limits.sendQueueMessagesMax || peer.queueBytes > this.limits.sendQueueBytesMax) {
      const dropped = peer.queue.shift();
      if (dropped === undefined) break;
      peer.queueBytes -= dropped.frame.length;
      peer.framesDropped += 1;
      this.counters.framesDroppedQueueFull += 1;
    }
    this.pump(peer);
  }

  /** The partition drill: drop all traffic to and from `peers` (every peer when null), both directions. */
  isolate(peers: readonly NodeId[] | null): void {
    this.isolation = peers === null ? 'all' : new Set(peers);
    for (const [id, peer] of this.outbound) {
      if (!this.isIsolated(id)) continue;
      this.counters.framesDroppedIsolated += peer.queue.length;
      peer.queue = [];
      peer.queueBytes = 0;
    }
  }

  heal(): void {
    this.isolation = null;
  }

  /** The slow-network drill: every message sent from now on waits this long before it goes out. */
  setDelayMs(delayMs: number): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`delay must be a non-negative number, got ${delayMs}`);
    this.delayMs = delayMs;
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const [id, peer] of this.outbound) {
      peers[id] = { connected: peer.handshaken, queueMessages: peer.queue.length, queueBytes: peer.queueBytes, framesDropped: peer.framesDropped };
    }
    return { ...this.counters, peers };
  }

  /** Stops listening and closes every connection; resolves once all sockets are closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sockets: Socket[] = [];
    for (const peer of this.outbound.values()) {
      if (peer.socket !== null) sockets.push(peer.socket);
      this.stopPeer(peer);
    }
    for (const connection of this.inbound) {
      sockets.push(connection.socket);
      if (connection.handshakeTimer !== null) clearTimeout(connection.handshakeTimer);
      connection.socket.destroy();
    }
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([serverClosed, ...sockets.map(whenClosed)]);
  }

  // ---- outbound ----

  private pump(peer: OutboundPeer): void {
    if (this.closed) return;
    if (peer.socket === null) return this.maybeDial(peer);
    if (!peer.handshaken || !peer.writable) return;
    while (peer.queue.length > 0) {
      const head = peer.queue[0];
      if (head === undefined) break;
      const waitMs = head.readyAtMs - performance.now();
      if (waitMs > 0) {
        if (peer.delayTimer === null) {
          peer.delayTimer = setTimeout(() => {
            peer.delayTimer = null;
            this.pump(peer);
          }, Math.ceil(waitMs));
        }
        return;
      }
      peer.queue.shift();
      peer.queueBytes -= head.frame.length;
      this.counters.framesSent += 1;
      this.counters.bytesSent += head.frame.length;
      this.cork(peer, peer.socket);
      // Stop at the kernel's high-water mark so that the bounded queue, not Node's unbounded writable buffer, holds the backlog.
      if (!peer.socket.write(head.frame)) {
        peer.writable = false;
        return;
      }
    }
  }

  /**
   * A Ready's messages to one peer go out in one writev rather than one write
   * each: the socket is corked for the rest of this turn of the event loop.
   */
  private cork(peer: OutboundPeer, socket: Socket): void {
    if (peer.corked) return;
    peer.corked = true;
    socket.cork();
    process.nextTick(() => {
      peer.corked = false;
      socket.uncork();
    });
  }

  private maybeDial(peer: OutboundPeer): void {
    if (this.closed || peer.socket !== null || peer.dialTimer !== null || peer.queue.length === 0) return;
    const waitMs = peer.nextDialAtMs - performance.now();
    if (waitMs > 0) {
      peer.dialTimer = setTimeout(() => {
        peer.dialTimer = null;
        this.maybeDial(peer);
      }, Math.ceil(waitMs));
      return;
    }
    this.dial(peer);
  }

  private dial(peer: OutboundPeer): void {
    if (peer.dials > 0) this.counters.reconnects += 1;
    peer.dials += 1;
    const socket = createConnection({ host: peer.address.host, port: peer.address.port, noDelay: true });
    const reader = new FrameReader(this.limits.frameBytesMax);
    peer.socket = socket;
    peer.handshaken = false;
    peer.writable = true;
    socket.setKeepAlive(true, 10_000);
    socket.on('connect', () => socket.write(this.helloFrame));
    socket.on('drain', () => {
      peer.writable = true;
      this.pump(peer);
    });
    socket.on('data', (chunk: Buffer) => {
      if (peer.socket !== socket) return;
      const output = reader.push(chunk);
      if (!output.ok) return this.dropOutbound(peer, socket, output.reason, true);
      for (const body of output.bodies) {
        const decoded = decodeFrameBody(body);
        if (!decoded.ok) return this.dropOutbound(peer, socket, decoded.reason, true);
        const problem = this.checkAnswer(peer, decoded.frame);
        if (problem !== null) return this.dropOutbound(peer, socket, problem, decoded.frame.type !== 'close');
        peer.handshaken = true;
        peer.failures = 0;
        this.options.logger.info({ peer: peer.address.id }, 'peer connection established');
        this.pump(peer);
      }
    });
    socket.on('error', (error) => {
      // A failing peer fails on every retry; say so once per outage, then quietly keep trying.
      const log = peer.failures === 0 ? this.options.logger.warn : this.options.logger.debug;
      log.call(this.options.logger, { peer: peer.address.id, address: `${peer.address.host}:${peer.address.port}`, error: error.message }, 'peer connection failed');
    });
    socket.on('close', () => {
      if (peer.socket !== socket) return;
      peer.socket = null;
      peer.handshaken = false;
      peer.failures += 1;
      peer.nextDialAtMs = performance.now() + this.backoffMs(peer.failures);
      this.maybeDial(peer);
    });
  }

  /** What the peer we dialled may say: its hello, once, naming itself, or a close with a reason. */
  private checkAnswer(peer: OutboundPeer, frame: DecodedFrame): string | null {
    if (frame.type === 'close') return `peer closed the connection: ${frame.reason}`;
    if (frame.type !== 'hello' || peer.handshaken) return `unexpected ${frame.type} frame from the peer we dialled`;
    const { hello } = frame;
    if (hello.protocolVersion !== peerProtocolVersion) return `peer speaks protocol ${hello.protocolVersion}, we speak ${peerProtocolVersion}`;
    if (hello.clusterId !== this.options.clusterId) return `peer belongs to cluster ${hello.clusterId}, not ${this.options.clusterId}`;
    if (hello.from !== peer.address.id) return `dialled ${peer.address.id} but ${hello.from} answered`;
    if (!this.peerTokenMatches(hello.token)) return `${hello.from} did not present this cluster's peer token`;
    return null;
  }

  private dropOutbound(peer: OutboundPeer, socket: Socket, reason: string, badFrame: boolean): void {
    if (badFrame) this.counters.badFrames += 1;
    this.options.logger.warn({ peer: peer.address.id, reason }, 'closing outbound peer connection');
    socket.destroy();
  }

  private stopPeer(peer: OutboundPeer): void {
    if (peer.dialTimer !== null) clearTimeout(peer.dialTimer);
    if (peer.delayTimer !== null) clearTimeout(peer.delayTimer);
    peer.dialTimer = null;
    peer.delayTimer = null;
    peer.queue = [];
    peer.queueBytes = 0;
    const socket = peer.socket;
    peer.socket = null;
    socket?.destroy();
  }

  private backoffMs(failures: number): number {
    const ceilingMs = Math.min(this.limits.backoffMsMax, this.limits.backoffMsMin * 2 ** Math.min(failures - 1, 30));
    // Equal jitter: half fixed, half random, so peers that failed together do not redial together.
    return Math.max(this.limits.backoffMsMin, ceilingMs / 2 + this.random() * (ceilingMs / 2));
  }

  // ---- inbound ----

  private accept(socket: Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (this.closed || this.inbound.size >= this.limits.inboundConnectionsMax) {
      this.counters.connectionsRejected += 1;
      this.options.logger.warn({ remote, inboundConnectionsMax: this.limits.inboundConnectionsMax }, 'refusing peer connection: too many connections');
      socket.destroy();
      return;
    }
    const connection: InboundConnection = { socket, reader: new FrameReader(this.limits.frameBytesMax), remote, peer: null, closing: false, handshakeTimer: null };
    connection.handshakeTimer = setTimeout(() => {
      this.counters.handshakesRejected += 1;
      this.hangUp(connection, `no hello within ${this.limits.handshakeTimeoutMs} ms`, true);
    }, this.limits.handshakeTimeoutMs);
    this.inbound.add(connection);
    socket.on('data', (chunk: Buffer) => this.onInboundData(connection, chunk));
    socket.on('end', () => {
      const bufferedBytes = connection.reader.bufferedBytes();
      if (bufferedBytes > 0) this.badFrame(connection, `peer ended the connection in the middle of a frame (${bufferedBytes} bytes buffered)`);
      else this.hangUp(connection, 'peer ended the connection', false);
    });
    socket.on('error', (error) => this.options.logger.debug({ remote, error: error.message }, 'peer connection error'));
    socket.on('close', () => {
      this.inbound.delete(connection);
      if (connection.handshakeTimer !== null) clearTimeout(connection.handshakeTimer);
    });
  }

  private onInboundData(connection: InboundConnection, chunk: Buffer): void {
    if (connection.closing) return;
    this.counters.bytesReceived += chunk.length;
    const output = connection.reader.push(chunk);
    if (!output.ok) return this.badFrame(connection, output.reason);
    for (const body of output.bodies) {
      if (connection.closing) return;
      const decoded = decodeFrameBody(body);
      if (!decoded.ok) return this.badFrame(connection, decoded.reason);
      const frame = decoded.frame;
      if (connection.peer === null) {
        this.onHello(connection, frame);
        continue;
      }
      if (frame.type === 'close') return this.hangUp(connection, `peer closed: ${frame.reason}`, false);
      if (frame.type !== 'message') return this.badFrame(connection, `unexpected ${frame.type} frame after the hello`);
      this.deliver(connection, connection.peer, frame.value);
    }
  }

  /** Constant-time: a wrong token takes as long as a right one. */
  private peerTokenMatches(presented: string | undefined): boolean {
    const expected = this.options.peerToken;
    if (expected === undefined) return true;
    if (presented === undefined) return false;
    const a = Buffer.from(expected);
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private onHello(connection: InboundConnection, frame: DecodedFrame): void {
    const reject = (reason: string): void => {
      this.counters.handshakesRejected += 1;
      this.hangUp(connection, reason, true);
    };
    if (frame.type !== 'hello') return reject(`expected a hello, got a ${frame.type} frame`);
    const { hello } = frame;
    if (hello.protocolVersion !== peerProtocolVersion) return reject(`protocol version ${hello.protocolVersion} is not supported (we speak ${peerProtocolVersion})`);
    if (hello.clusterId !== this.options.clusterId) return reject(`cluster ${hello.clusterId} is not this cluster (${this.options.clusterId})`);
    if (!this.outbound.has(hello.from)) return reject(`node ${hello.from} is not a known peer`);
    if (!this.peerTokenMatches(hello.token)) return reject(`node ${hello.from} did not present this cluster's peer token`);
    if (connection.handshakeTimer !== null) clearTimeout(connection.handshakeTimer);
    connection.handshakeTimer = null;
    connection.peer = hello.from;
    connection.socket.write(this.helloFrame);
    // A peer that restarted dials again while its old connection may linger half-open: keep the newest.
    for (const other of this.inbound) {
      if (other !== connection && other.peer === hello.from) this.hangUp(other, 'replaced by a newer connection from the same peer', false);
    }
  }

  private deliver(connection: InboundConnection, peer: NodeId, value: unknown): void {
    const parsed = this.options.parse(value);
    if (!parsed.ok) return this.badFrame(connection, `message fails validation: ${parsed.error.message}`);
    const message = parsed.data;
    if (this.options.addressOf !== undefined) {
      const { from, to } = this.options.addressOf(message);
      if (from !== peer) return this.badFrame(connection, `message claims to come from ${from} on ${peer}'s connection`);
      if (to !== this.options.nodeId) return this.badFrame(connection, `message for ${to} reached ${this.options.nodeId}`);
    }
    if (this.isIsolated(peer)) {
      this.counters.framesDroppedIsolated += 1;
      return;
    }
    this.counters.framesReceived += 1;
    try {
      this.handler(message, peer);
    } catch (error) {
      // A throwing handler is our bug, not the peer's: log it loudly and keep the connection.
      this.options.logger.error({ peer, error: describe(error) }, 'peer message handler threw');
    }
  }

  private badFrame(connection: InboundConnection, reason: string): void {
    if (connection.closing) return;
    this.counters.badFrames += 1;
    this.hangUp(connection, reason, true);
  }

  /** Stops reading, tells the peer why (best effort) and closes; destroyed after `closeGraceMs` at the latest. */
  private hangUp(connection: InboundConnection, reason: string, warn: boolean): void {
    if (connection.closing) return;
    connection.closing = true;
    if (connection.handshakeTimer !== null) clearTimeout(connection.handshakeTimer);
    connection.handshakeTimer = null;
    const fields = { peer: connection.peer, remote: connection.remote, reason };
    if (warn) this.options.logger.warn(fields, 'closing peer connection');
    else this.options.logger.info(fields, 'closing peer connection');
    const socket = connection.socket;
    socket.pause();
    socket.end(encodeClose(reason));
    const timer = setTimeout(() => socket.destroy(), this.limits.closeGraceMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  private isIsolated(peer: NodeId): boolean {
    return this.isolation === 'all' || (this.isolation !== null && this.isolation.has(peer));
  }
}

function whenClosed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
