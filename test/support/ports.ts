import { createServer } from 'node:net';

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A base port P such that P+1..P+n (HTTP) and P+101..P+100+n (peer) are free
 * on loopback, as `quorumscope cluster` lays them out. `lowest` keeps tests and
 * benchmarks that run side by side in different ranges.
 */
export async function freeBasePort(nodes: number, lowest = 20_000, slots = 200): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = lowest + Math.floor(Math.random() * slots) * 200;
    const ports = Array.from({ length: nodes }, (_, i) => [base + i + 1, base + 101 + i]).flat();
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) return base;
  }
  throw new Error('no free port range found');
}
