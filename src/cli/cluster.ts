import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { NodeIdSchema } from '../shared/protocol';

/** What `quorumscope cluster` writes so that tests, `ctl` and the dashboard can find the nodes. */
export const ClusterFileSchema = z.object({
  version: z.literal(1),
  clusterId: z.string(),
  engine: z.string(),
  viewerToken: z.string(),
  operatorToken: z.string(),
  /** The shared secret agents present to each other on the peer port. */
  peerToken: z.string(),
  allowDrills: z.boolean(),
  nodes: z.array(
    z.object({
      id: NodeIdSchema,
      http: z.string(),
      peer: z.string(),
      pid: z.number().int().nullable(),
      dataDir: z.string(),
      /** The exact command line that (re)starts this node; tokens come from the environment. */
      args: z.array(z.string()),
    }),
  ),
});
export type ClusterFile = z.infer<typeof ClusterFileSchema>;

export interface ClusterOptions {
  nodes: number;
  engine: string;
  dir: string;
  basePort: number;
  allowDrills: boolean;
  tickIntervalMs?: number;
  /** Extra agent flags for every node (tests: small segments, frequent snapshots). */
  agentArgs?: readonly string[];
  /** The script that runs `quorumscope`; defaults to this process's own entry. */
  entry: string;
  log: (line: string) => void;
}

export const clusterNodesMax = 9;

function token(): string {
  return randomBytes(24).toString('base64url');
}

async function writeAtomically(file: string, body: string): Promise<void> {
  const temporary = `${file}.tmp`;
  await writeFile(temporary, body, { mode: 0o600 });
  await rename(temporary, file);
}

/** The environment an agent of this cluster starts with: its tokens travel there, not on the command line. */
export function agentEnvironment(file: Pick<ClusterFile, 'viewerToken' | 'operatorToken' | 'peerToken'>): NodeJS.ProcessEnv {
  return { ...process.env, QUORUMSCOPE_VIEWER_TOKEN: file.viewerToken, QUORUMSCOPE_OPERATOR_TOKEN: file.operatorToken, QUORUMSCOPE_PEER_TOKEN: file.peerToken };
}

export interface RunningCluster {
  file: ClusterFile;
  children: Map<string, ChildProcess>;
  stop(): Promise<void>;
}

/** Starts N agents as child processes on 127.0.0.1 and writes `cluster.json`. */
export async function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  const clusterId = `local-${options.engine}`;
  const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${options.basePort + 100 + i + 1}`);
  const file: ClusterFile = {
    version: 1,
    clusterId,
    engine: options.engine,
    viewerToken: token(),
    operatorToken: token(),
    peerToken: token(),
    allowDrills: options.allowDrills,
    nodes: [],
  };
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const children = new Map<string, ChildProcess>();
  const env = agentEnvironment(file);
  for (const [i, id] of ids.entries()) {
    const dataDir = path.join(options.dir, id);
    const httpPort = options.basePort + i + 1;
    const peerPort = options.basePort + 100 + i + 1;
    const args = [
      options.entry,
      'agent',
      '--node-id', id,
      '--cluster-id', clusterId,
      '--engine', options.engine,
      '--data-dir', dataDir,
      '--http-port', String(httpPort),
      '--peer-port', String(peerPort),
      ...peers.flatMap((peer) => ['--peer', peer]),
      ...(options.tickIntervalMs === undefined ? [] : ['--tick-interval-ms', String(options.tickIntervalMs)]),
      ...(options.allowDrills ? ['--allow-drills'] : []),
      ...(options.agentArgs ?? []),
    ];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') options.log(`[${id}] ${line}`);
    });
    child.once('exit', (code, signal) => options.log(`[${id}] exited (${signal ?? `code ${code}`})`));
    children.set(id, child);
    file.nodes.push({ id, http: `127.0.0.1:${httpPort}`, peer: `127.0.0.1:${peerPort}`, pid: child.pid ?? null, dataDir, args: [process.execPath, ...args] });
  }
  await writeAtomically(path.join(options.dir, 'cluster.json'), JSON.stringify(file, null, 2));
  return {
    file,
    children,
    stop: async () => {
      await Promise.all(
        [...children.values()].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGCONT');
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
            }),
        ),
      );
    },
  };
}
