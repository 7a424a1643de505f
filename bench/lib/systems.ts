/**
 * The two systems the cluster benchmarks compare, behind one small interface:
 * a 3-node Quorumscope cluster (agents from the build) and a 3-member etcd
 * cluster, both on 127.0.0.1 in temp dirs, both driven through the same
 * keep-alive HTTP client (lib/http.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import { freeBasePort as freeBasePortFrom } from '../../test/support/ports';
import path from 'node:path';
import { agentEnvironment, startCluster, type RunningCluster } from '../../src/cli/cluster';
import { createAgent, freePorts, request, sleep, type HttpAnswer } from './http';
import { forgetDirectory, killHard, stopGracefully, track, trackDirectory } from './processes';

export interface BenchSystem {
  readonly name: string;
  ids(): string[];
  /** One write of `value` under `key` to node `id`; status 200 means it was committed. */
  put(agent: http.Agent, id: string, key: string, value: string, timeoutMs: number): Promise<HttpAnswer>;
  /** The node that leads now, as the nodes themselves report it; null when none agrees. */
  leader(agent: http.Agent): Promise<string | null>;
  waitForLeader(agent: http.Agent, timeoutMs: number): Promise<string>;
  /** SIGKILL by PID. */
  kill(id: string): Promise<void>;
  /** Starts a killed node again on the same data and waits until it follows the leader. */
  restart(agent: http.Agent, id: string, timeoutMs: number): Promise<void>;
  /** Planned leadership transfer to `to`; resolves when the system answered. */
  transfer(agent: http.Agent, from: string, to: string, timeoutMs: number): Promise<HttpAnswer>;
  /** host:port of a node's HTTP API (Quorumscope) or client URL (etcd). */
  httpOf(id: string): string;
  /** The PID of a node's process while it runs. */
  pidOf(id: string): number | null;
  /** Stops every node by PID and deletes the data. */
  stop(): Promise<void>;
  logTail(): string;
}

const logLinesMax = 200;
const pollIntervalMs = 10;

function pushLog(logs: string[], line: string): void {
  logs.push(line);
  if (logs.length > logLinesMax) logs.shift();
}

/** Benchmarks take their ports from 30000 up, tests from 20000: the two can run side by side. */
const freeBasePort = (nodes: number) => freeBasePortFrom(nodes, 30_000, 100);

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>, logTail: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms\n${logTail()}`);
    await sleep(pollIntervalMs);
  }
}

/**
 * A private copy of the build (bin/ and out/main/) for one benchmark run, so
 * that a rebuild in the working tree while it runs cannot change or break
 * the agents half-way. It sits under node_modules/.cache so that the copied
 * code still resolves its dependencies from the project's node_modules.
 */
function snapshotBuild(): string {
  const cacheDir = path.resolve('node_modules/.cache');
  mkdirSync(cacheDir, { recursive: true });
  const root = trackDirectory(mkdtempSync(path.join(cacheDir, 'qs-bench-build-')));
  cpSync(path.resolve('bin'), path.join(root, 'bin'), { recursive: true });
  cpSync(path.resolve('out/main'), path.join(root, 'out/main'), { recursive: true });
  return root;
}

interface QuorumscopeStatus {
  nodeId: string;
  role: string;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
}

export async function startQuorumscope(options: { nodes: number }): Promise<BenchSystem> {
  const dir = trackDirectory(mkdtempSync(path.join(os.tmpdir(), 'qs-bench-')));
  const logs: string[] = [];
  const build = snapshotBuild();
  const entry = path.join(build, 'bin/quorumscope.mjs');
  const basePort = await freeBasePort(options.nodes);
  let cluster: RunningCluster;
  try {
    cluster = await startCluster({ nodes: options.nodes, engine: 'raft', dir, basePort, allowDrills: false, entry, log: (line) => pushLog(logs, line) });
  } catch (error) {
    for (const directory of [dir, build]) {
      rmSync(directory, { recursive: true, force: true });
      forgetDirectory(directory);
    }
    throw error;
  }
  for (const child of cluster.children.values()) track(child);
  const file = cluster.file;
  const nodeOf = (id: string) => {
    const node = file.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  };
  const logTail = () => logs.slice(-20).join('\n');
  const status = async (agent: http.Agent, id: string): Promise<QuorumscopeStatus | null> => {
    const answer = await request(agent, { method: 'GET', url: `http://${nodeOf(id).http}/v1/status`, timeoutMs: 1_000 });
    return answer.status === 200 ? (JSON.parse(answer.text) as QuorumscopeStatus) : null;
  };
  const leader = async (agent: http.Agent): Promise<string | null> => {
    const statuses = await Promise.all(file.nodes.map((node) => status(agent, node.id)));
    return statuses.find((candidate) => candidate?.role === 'leader')?.nodeId ?? null;
  };
  const system: BenchSystem = {
    name: 'quorumscope',
    ids: () => file.nodes.map((node) => node.id),
    httpOf: (id) => nodeOf(id).http,
    pidOf: (id) => cluster.children.get(id)?.pid ?? null,
    put: (agent, id, key, value, timeoutMs) =>
      request(agent, { method: 'PUT', url: `http://${nodeOf(id).http}/v1/kv/${encodeURIComponent(key)}`, body: JSON.stringify({ value }), timeoutMs }),
    leader,
    waitForLeader: (agent, timeoutMs) => until('a Quorumscope leader', timeoutMs, () => leader(agent), logTail),
    kill: async (id) => {
      const child = cluster.children.get(id);
      if (child !== undefined) await killHard(child);
    },
    restart: async (agent, id, timeoutMs) => {
      const [executable, ...args] = nodeOf(id).args;
      const child: ChildProcess = track(
        spawn(executable ?? process.execPath, args, {
          env: agentEnvironment(file),
          stdio: ['ignore', 'ignore', 'pipe'],
        }),
      );
      child.stderr?.on('data', (chunk: Buffer) => pushLog(logs, `[${id}] ${chunk.toString().trim()}`));
      cluster.children.set(id, child);
      // Healthy: it follows a leader and has applied everything the leader had committed when we looked.
      await until(
        `${id} following again`,
        timeoutMs,
        async () => {
          const leaderId = await leader(agent);
          if (leaderId === null || leaderId === id) return null;
          const [mine, theirs] = await Promise.all([status(agent, id), status(agent, leaderId)]);
          if (mine === null || theirs === null || mine.leader !== leaderId) return null;
          return mine.appliedIndex >= theirs.commitIndex ? true : null;
        },
        logTail,
      );
    },
    transfer: (agent, from, to, timeoutMs) =>
      request(agent, {
        method: 'POST',
        url: `http://${nodeOf(from).http}/v1/admin/transfer-leadership`,
        body: JSON.stringify({ to }),
        headers: { authorization: `Bearer ${file.operatorToken}` },
        timeoutMs,
      }),
    stop: async () => {
      await Promise.all([...cluster.children.values()].map((child) => stopGracefully(child)));
      for (const directory of [dir, build]) {
        rmSync(directory, { recursive: true, force: true });
        forgetDirectory(directory);
      }
    },
    logTail,
  };
  return system;
}

interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  args: string[];
  child: ChildProcess | null;
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export interface EtcdOptions {
  nodes: number;
  /** etcd's defaults are 100 ms heartbeats and a 1000 ms election timeout. */
  heartbeatMs?: number;
  electionMs?: number;
}

/**
 * etcd 3.4 members with default durability (fsync on every commit). Driven
 * through the v3 JSON gateway that 3.4 serves on its client port
 * (`/v3/kv/put`, `/v3/maintenance/status`, `/v3/maintenance/transfer-leadership`).
 */
export async function startEtcd(options: EtcdOptions): Promise<BenchSystem> {
  const dir = trackDirectory(mkdtempSync(path.join(os.tmpdir(), 'etcd-bench-')));
  const logs: string[] = [];
  const ports = await freePorts(options.nodes * 2);
  const members: EtcdMember[] = Array.from({ length: options.nodes }, (_, i) => ({
    name: `e${i + 1}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: path.join(dir, `e${i + 1}`),
    args: [],
    child: null,
  }));
  const initialCluster = members.map((member) => `${member.name}=${member.peerUrl}`).join(',');
  for (const member of members) {
    member.args = [
      '--name', member.name,
      '--data-dir', member.dataDir,
      '--listen-client-urls', member.clientUrl,
      '--advertise-client-urls', member.clientUrl,
      '--listen-peer-urls', member.peerUrl,
      '--initial-advertise-peer-urls', member.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `bench-${process.pid}`,
      '--log-level', 'warn',
      ...(options.heartbeatMs === undefined ? [] : ['--heartbeat-interval', String(options.heartbeatMs)]),
      ...(options.electionMs === undefined ? [] : ['--election-timeout', String(options.electionMs)]),
    ];
  }
  const spawnMember = (member: EtcdMember): void => {
    const child = track(spawn('etcd', member.args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    child.stderr?.on('data', (chunk: Buffer) => pushLog(logs, `[${member.name}] ${chunk.toString().trim().slice(0, 400)}`));
    member.child = child;
  };
  for (const member of members) spawnMember(member);
  const logTail = () => logs.slice(-20).join('\n');
  const memberOf = (id: string): EtcdMember => {
    const member = members.find((candidate) => candidate.name === id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  };
  /** Member ids (uint64, as decimal strings in the gateway's JSON) by name. */
  const memberIds = new Map<string, string>();
  const status = async (agent: http.Agent, member: EtcdMember): Promise<{ self: string; leader: string } | null> => {
    const answer = await request(agent, { method: 'POST', url: `${member.clientUrl}/v3/maintenance/status`, body: '{}', timeoutMs: 1_000 });
    if (answer.status !== 200) return null;
    const body = JSON.parse(answer.text) as { header?: { member_id?: string }; leader?: string };
    if (body.header?.member_id === undefined || body.leader === undefined || body.leader === '0') return null;
    memberIds.set(member.name, body.header.member_id);
    return { self: body.header.member_id, leader: body.leader };
  };
  const leader = async (agent: http.Agent): Promise<string | null> => {
    const live = members.filter((member) => member.child !== null && member.child.exitCode === null && member.child.signalCode === null);
    const statuses = await Promise.all(live.map((member) => status(agent, member)));
    for (const [i, found] of statuses.entries()) if (found !== null && found.self === found.leader) return (live[i] as EtcdMember).name;
    return null;
  };
  const system: BenchSystem = {
    name: 'etcd',
    ids: () => members.map((member) => member.name),
    httpOf: (id) => memberOf(id).clientUrl.replace('http://', ''),
    pidOf: (id) => memberOf(id).child?.pid ?? null,
    put: (agent, id, key, value, timeoutMs) =>
      request(agent, {
        method: 'POST',
        url: `${memberOf(id).clientUrl}/v3/kv/put`,
        body: JSON.stringify({ key: base64(key), value: base64(value) }),
        timeoutMs,
      }),
    leader,
    waitForLeader: (agent, timeoutMs) => until('an etcd leader', timeoutMs, () => leader(agent), logTail),
    kill: async (id) => {
      const child = memberOf(id).child;
      if (child !== null) await killHard(child);
    },
    restart: async (agent, id, timeoutMs) => {
      const member = memberOf(id);
      spawnMember(member);
      await until(
        `${id} following again`,
        timeoutMs,
        async () => {
          const found = await status(agent, member);
          return found !== null && found.leader !== found.self ? true : null;
        },
        logTail,
      );
    },
    transfer: async (agent, from, to, timeoutMs) => {
      const target = memberIds.get(to);
      if (target === undefined) return { status: 0, text: `member id of ${to} unknown` };
      return request(agent, {
        method: 'POST',
        url: `${memberOf(from).clientUrl}/v3/maintenance/transfer-leadership`,
        body: JSON.stringify({ targetID: target }),
        timeoutMs,
      });
    },
    stop: async () => {
      await Promise.all(members.map((member) => (member.child === null ? Promise.resolve() : stopGracefully(member.child))));
      rmSync(dir, { recursive: true, force: true });
      forgetDirectory(dir);
    },
    logTail,
  };
  // Learn every member's id (transfers need them) once a leader is elected.
  const setupAgent = createAgent();
  try {
    await system.waitForLeader(setupAgent, 20_000);
    for (const member of members) await until(`${member.name} status`, 10_000, () => status(setupAgent, member), logTail);
  } finally {
    setupAgent.destroy();
  }
  return system;
}
