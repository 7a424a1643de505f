import { readFileSync } from 'node:fs';
import { ClusterFileSchema, type ClusterFile } from './cluster';
import { describeIssues } from '../shared/protocol';

/** `quorumscope ctl`: scripting against a cluster described by cluster.json, over the HTTP API. */

export function loadClusterFile(file: string): ClusterFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  const parsed = ClusterFileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not a cluster file: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

function nodeEndpoint(cluster: ClusterFile, node: string | undefined): string {
  if (node === undefined) return cluster.nodes[0]?.http ?? '';
  const found = cluster.nodes.find((candidate) => candidate.id === node);
  if (found === undefined) throw new Error(`no node "${node}" in the cluster (${cluster.nodes.map((n) => n.id).join(', ')})`);
  return found.http;
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Plain text (e.g. metrics) is returned as is.
  }
  return { status: response.status, body };
}

export async function ctlStatus(cluster: ClusterFile): Promise<string> {
  const rows = await Promise.all(
    cluster.nodes.map(async (node) => {
      try {
        const { body } = await call(`http://${node.http}/v1/status`);
        const status = body as { role: string; epochLabel: string; leader: string | null; lastIndex: number; commitIndex: number; appliedIndex: number };
        return `${node.id.padEnd(6)} ${status.role.padEnd(10)} ${status.epochLabel.padEnd(10)} leader=${String(status.leader).padEnd(6)} last=${status.lastIndex} commit=${status.commitIndex} applied=${status.appliedIndex}`;
      } catch (error) {
        return `${node.id.padEnd(6)} unreachable (${(error as Error).message})`;
      }
    }),
  );
  return rows.join('\n');
}

export async function ctlPut(cluster: ClusterFile, node: string | undefined, key: string, value: string) {
  return call(`http://${nodeEndpoint(cluster, node)}/v1/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value }),
  });
}

export async function ctlGet(cluster: ClusterFile, node: string | undefined, key: string) {
  return call(`http://${nodeEndpoint(cluster, node)}/v1/kv/${encodeURIComponent(key)}`);
}

export async function ctlTransfer(cluster: ClusterFile, node: string | undefined, to: string) {
  return call(`http://${nodeEndpoint(cluster, node)}/v1/admin/transfer-leadership`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.operatorToken}` },
    body: JSON.stringify({ to }),
  });
}

/** `ctl drill corrupt`: runs a corruption drill on one node over its socket.io command channel (the node must allow drills). */
export async function ctlDrillCorrupt(cluster: ClusterFile, node: string, options: { fault: string; target: string; seed?: number }) {
  const { io } = await import('socket.io-client');
  const socket = io(`http://${nodeEndpoint(cluster, node)}`, { auth: { token: cluster.operatorToken }, transports: ['websocket'], reconnection: false });
  try {
    const drill = { kind: 'corrupt', target: options.target, fault: options.fault, ...(options.seed === undefined ? {} : { seed: options.seed }) };
    const answer: unknown = await socket.timeout(10_000).emitWithAck('command:request', { type: 'drill:run', drill });
    return { status: (answer as { ok?: boolean }).ok === true ? 200 : 400, body: answer };
  } finally {
    socket.close();
  }
}
