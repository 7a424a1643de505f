import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { agentEnvironment, startCluster, type RunningCluster } from '../../../src/cli/cluster';
import { freeBasePort } from '../../support/ports';
import type { NodeStatus } from '../../../src/shared/protocol';

/**
 * Real agent processes on loopback for integration tests. The agents run
 * from the build (`npm run build` precedes the tests in `npm test`).
 */

const entry = path.resolve('bin/quorumscope.mjs');

export interface TestCluster {
  dir: string;
  cluster: RunningCluster;
  logs: string[];
  http(id: string): string;
  ids(): string[];
  kill(id: string, signal?: NodeJS.Signals): Promise<void>;
  restart(id: string): Promise<void>;
  status(id: string): Promise<NodeStatus | null>;
  waitForLeader(options?: { excluding?: string[]; timeoutMs?: number }): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestCluster(options: { nodes: number; allowDrills?: boolean; tickIntervalMs?: number; agentArgs?: readonly string[] }): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qs-cluster-'));
  const basePort = await freeBasePort(options.nodes);
  const logs: string[] = [];
  const cluster = await startCluster({
    nodes: options.nodes,
    engine: 'raft',
    dir,
    basePort,
    allowDrills: options.allowDrills ?? false,
    ...(options.tickIntervalMs === undefined ? {} : { tickIntervalMs: options.tickIntervalMs }),
    ...(options.agentArgs === undefined ? {} : { agentArgs: options.agentArgs }),
    entry,
    log: (line) => {
      logs.push(line);
      if (logs.length > 2_000) logs.shift();
    },
  });
  const nodeOf = (id: string) => {
    const node = cluster.file.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  };
  const status = async (id: string): Promise<NodeStatus | null> => {
    try {
      const response = await fetch(`http://${nodeOf(id).http}/v1/status`, { signal: AbortSignal.timeout(1_000) });
      return response.ok ? ((await response.json()) as NodeStatus) : null;
    } catch {
      return null;
    }
  };
  const harness: TestCluster = {
    dir,
    cluster,
    logs,
    http: (id) => `http://${nodeOf(id).http}`,
    ids: () => cluster.file.nodes.map((node) => node.id),
    kill: async (id, signal = 'SIGKILL') => {
      const child = cluster.children.get(id);
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
    },
    restart: async (id) => {
      const node = nodeOf(id);
      const [executable, ...args] = node.args;
      const child: ChildProcess = spawn(executable ?? process.execPath, args, {
        env: agentEnvironment(cluster.file),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr?.on('data', (chunk: Buffer) => logs.push(`[${id}] ${chunk.toString().trim()}`));
      cluster.children.set(id, child);
      const deadline = Date.now() + 15_000;
      while ((await status(id)) === null) {
        if (Date.now() > deadline) throw new Error(`${id} did not come back: ${logs.slice(-10).join('\n')}`);
        await sleep(50);
      }
    },
    status,
    waitForLeader: async ({ excluding = [], timeoutMs = 15_000 } = {}) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const statuses = await Promise.all(harness.ids().filter((id) => !excluding.includes(id)).map(status));
        const leader = statuses.find((candidate) => candidate?.role === 'leader');
        if (leader) return leader.nodeId;
        if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms: ${logs.slice(-10).join('\n')}`);
        await sleep(25);
      }
    },
    stop: async () => {
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  // Every node answers before a test starts: a leader alone does not mean the third node is listening yet.
  const upDeadline = Date.now() + 30_000;
  for (const id of harness.ids()) {
    while ((await status(id)) === null) {
      if (Date.now() > upDeadline) {
        await harness.stop();
        throw new Error(`${id} did not start: ${logs.slice(-10).join('\n')}`);
      }
      await sleep(50);
    }
  }
  return harness;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function httpJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(8_000) });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, body };
}

export function put(base: string, key: string, value: string, init: RequestInit = {}) {
  return httpJson(`${base}/v1/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
    body: JSON.stringify({ value }),
    signal: init.signal,
  });
}

export function get(base: string, key: string) {
  return httpJson(`${base}/v1/kv/${encodeURIComponent(key)}`);
}

/**
 * A read as a client does it: a 503 (no leader known yet, e.g. right after a
 * node resumes) is retried after a short wait; any other answer is final.
 */
export async function getWithRetry(base: string, key: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await get(base, key).catch(() => ({ status: 0, body: {} as Record<string, unknown> }));
    if ((answer.status !== 503 && answer.status !== 0) || Date.now() > deadline) return answer;
    await sleep(50);
  }
}

/** Retries a write through the cluster until some node accepts it (as a real client would). */
export async function putWithRetry(cluster: TestCluster, key: string, value: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let attempt = 0;
  for (;;) {
    const ids = cluster.ids();
    const id = ids[attempt % ids.length] ?? 'n1';
    attempt += 1;
    try {
      const answer = await put(cluster.http(id), key, value, {
        headers: { 'x-client-id': `retry-${key}`, 'x-client-sequence': '1' },
        // A stopped node never answers: give up on it quickly and ask the next.
        signal: AbortSignal.timeout(2_000),
      });
      if (answer.status === 200) return answer.body.index as number;
    } catch {
      // The node is down or paused: try the next one.
    }
    if (Date.now() > deadline) throw new Error(`write ${key} not accepted within ${timeoutMs} ms`);
    await sleep(50);
  }
}
