import { createConnection, createServer, type AddressInfo } from 'node:net';
import { z } from 'zod';
import type { Logger } from '../../../src/shared/logger';
import { parse, type Result } from '../../../src/shared/protocol/result';
import { FrameReader, decodeFrameBody } from '../../../src/agent/transport/frame';
import { PeerTransport, type PeerTransportOptions, type TransportLimits } from '../../../src/agent/transport/peer-transport';

export const PingSchema = z.object({
  type: z.literal('ping'),
  from: z.string(),
  to: z.string(),
  seq: z.number().int().nonnegative(),
  data: z.custom<Uint8Array>((input) => input instanceof Uint8Array, 'expected bytes').optional(),
});
export type Ping = z.infer<typeof PingSchema>;

export function parsePing(input: unknown): Result<Ping> {
  return parse(PingSchema, input, 'ping');
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields, message });
  };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

export interface Endpoint {
  readonly id: string;
  readonly transport: PeerTransport<Ping>;
  readonly received: Ping[];
  readonly lines: LogLine[];
}

/** Transports started by a test; `closeAll` in `afterEach` stops every one of them. */
export class Endpoints {
  private readonly started: PeerTransport<Ping>[] = [];

  async start(id: string, options: { port?: number; limits?: Partial<TransportLimits>; clusterId?: string; peers?: PeerTransportOptions<Ping>['peers']; peerToken?: string } = {}): Promise<Endpoint> {
    const received: Ping[] = [];
    const { logger, lines } = captureLogger();
    const listening = await PeerTransport.listen<Ping>({
      clusterId: options.clusterId ?? 'test-cluster',
      nodeId: id,
      peers: options.peers ?? [],
      port: options.port ?? 0,
      parse: parsePing,
      addressOf: (message) => message,
      onMessage: (message) => received.push(message),
      logger,
      ...(options.peerToken === undefined ? {} : { peerToken: options.peerToken }),
      limits: { backoffMsMin: 10, backoffMsMax: 100, closeGraceMs: 200, ...options.limits },
      random: () => 0.5,
    });
    if (!listening.ok) throw new Error(listening.error.message);
    this.started.push(listening.data);
    return { id, transport: listening.data, received, lines };
  }

  /** Starts `ids` and makes every one a peer of every other. */
  async mesh(ids: readonly string[], limits: Partial<TransportLimits> = {}): Promise<Endpoint[]> {
    const endpoints: Endpoint[] = [];
    for (const id of ids) endpoints.push(await this.start(id, { limits }));
    for (const endpoint of endpoints) {
      for (const other of endpoints) {
        if (other !== endpoint) endpoint.transport.addPeer({ id: other.id, host: '127.0.0.1', port: other.transport.address().port });
      }
    }
    return endpoints;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.started.splice(0).map((transport) => transport.close()));
  }
}

export async function waitFor(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function ping(from: string, to: string, seq: number, data?: Uint8Array): Ping {
  return data === undefined ? { type: 'ping', from, to, seq } : { type: 'ping', from, to, seq, data };
}

/** A port that was free a moment ago (listen on 0, then close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Connects a raw socket, writes `bytes`, half-closes, and waits for the server
 * to close. Returns the local port (to find the server's log line) and the
 * reason from the server's close frame, if one arrived.
 */
export async function rawExchange(port: number, bytes: Uint8Array, timeoutMs = 3_000): Promise<{ localPort: number; closeReason: string | null }> {
  const socket = createConnection({ host: '127.0.0.1', port });
  const reader = new FrameReader(1024 * 1024);
  let closeReason: string | null = null;
  socket.on('data', (chunk: Buffer) => {
    const output = reader.push(chunk);
    if (!output.ok) return;
    for (const body of output.bodies) {
      const decoded = decodeFrameBody(body);
      if (decoded.ok && decoded.frame.type === 'close') closeReason = decoded.frame.reason;
    }
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const localPort = socket.localPort ?? 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server did not close the connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end(bytes);
  });
  return { localPort, closeReason };
}

export function closeReasonFor(lines: readonly LogLine[], localPort: number): string | null {
  const line = lines.find((candidate) => candidate.message === 'closing peer connection' && String(candidate.fields.remote).endsWith(`:${localPort}`));
  return line === undefined ? null : String(line.fields.reason);
}
