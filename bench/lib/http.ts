/**
 * The one HTTP client path every system under test is driven through: Node's
 * http module with one keep-alive agent, so Quorumscope and etcd pay the same
 * client costs.
 */
import http from 'node:http';
import { createServer, type Server } from 'node:net';

/** Sockets the agent keeps per host; above the highest client concurrency. */
export const socketsPerHostMax = 128;

export interface HttpAnswer {
  status: number;
  text: string;
}

export function createAgent(socketsMax = socketsPerHostMax): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: socketsMax, maxFreeSockets: socketsMax });
}

/** One request; a transport error or timeout answers status 0 rather than throwing. */
export function request(
  agent: http.Agent,
  options: { method: string; url: string; body?: string; headers?: Record<string, string>; timeoutMs: number },
): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const url = new URL(options.url);
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(options.body));
    }
    let settled = false;
    const finish = (answer: HttpAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const outgoing = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: options.method, headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => finish({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', (error) => finish({ status: 0, text: error.message }));
      },
    );
    const timer = setTimeout(() => {
      outgoing.destroy(new Error('timeout'));
      finish({ status: 0, text: 'timeout' });
    }, options.timeoutMs);
    outgoing.on('error', (error) => finish({ status: 0, text: error.message }));
    outgoing.end(options.body);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Ports the kernel hands out as free on 127.0.0.1 right now (held together so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
