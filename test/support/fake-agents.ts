import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as SocketServer } from 'socket.io';
import type { AgentHello, ClusterEvent, EventBody, NodeStatus, StatusSample } from '../../src/shared/protocol';

/**
 * A load generator that speaks the agent side of the telemetry protocol for
 * many simulated nodes: one socket.io server per node on its own loopback
 * port, sampling at 10 Hz and sending two samples per batch, as real agents do.
 */
export interface FakeNode {
  nodeId: string;
  endpoint: string;
  emitEvent(body: EventBody): ClusterEvent;
}

export interface FakeCluster {
  clusterId: string;
  nodes: FakeNode[];
}

export interface FakeFleet {
  clusters: FakeCluster[];
  token: string;
  close(): Promise<void>;
}

const sampleIntervalMs = 100;
const samplesPerBatch = 2;

function statusFor(clusterId: string, nodeIds: string[], nodeId: string, tick: number): NodeStatus {
  const leader = nodeIds[0] ?? nodeId;
  const lastIndex = 1_000 + tick * 5;
  const isLeader = nodeId === leader;
  return {
    nodeId,
    clusterId,
    engine: 'raft',
    role: isLeader ? 'leader' : 'follower',
    epoch: 3,
    epochLabel: 'term 3',
    leader,
    lastIndex,
    commitIndex: lastIndex - 1,
    appliedIndex: lastIndex - 2,
    voters: nodeIds,
    learners: [],
    followers: isLeader
      ? nodeIds.slice(1).map((id, i) => {
          const lagEntries = (tick * (i + 3)) % 40;
          return { nodeId: id, voter: true, state: 'replicate' as const, matchIndex: lastIndex - lagEntries, nextIndex: lastIndex + 1, lagEntries, lagMs: lagEntries * 2.5, lastContactMs: 12 };
        })
      : [],
    transferringTo: null,
    integrity: null,
    storage: { segments: 3, walBytes: 3_000_000 + tick * 1_000, snapshotIndex: 0, fsyncP99Ms: 1.2 },
    process: { pid: 1000 + tick, rssBytes: 80_000_000, cpuPercent: 3, uptimeMs: tick * sampleIntervalMs },
    drillsAllowed: false,
    activeDrills: [],
  };
}

async function startNode(clusterId: string, nodeIds: string[], nodeId: string, token: string): Promise<{ node: FakeNode; close: () => Promise<void> }> {
  const http: HttpServer = createServer();
  const io = new SocketServer(http, { serveClient: false });
  io.use((socket, next) => ((socket.handshake.auth as { token?: unknown }).token === token ? next() : next(new Error('unauthorized'))));
  const hello: AgentHello = {
    protocolVersion: 1,
    nodeId,
    clusterId,
    engine: 'raft',
    access: 'operator',
    drillsAllowed: false,
    bootId: 'bench',
    statusIntervalMs: sampleIntervalMs * samplesPerBatch,
  };
  io.on('connection', (socket) => socket.emit('agent:hello', hello));
  let tick = 0;
  let batch: StatusSample[] = [];
  const timer = setInterval(() => {
    tick += 1;
    batch.push({ atMs: Date.now(), status: statusFor(clusterId, nodeIds, nodeId, tick) });
    if (batch.length >= samplesPerBatch) {
      io.emit('status:batch', batch);
      batch = [];
    }
  }, sampleIntervalMs);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  let sequence = 0;
  return {
    node: {
      nodeId,
      endpoint: `127.0.0.1:${port}`,
      emitEvent: (body) => {
        sequence += 1;
        const event: ClusterEvent = { id: `${nodeId}:bench:${sequence}`, atMs: Date.now(), nodeId, body };
        io.emit('cluster:event', event);
        return event;
      },
    },
    close: async () => {
      clearInterval(timer);
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}

export async function startFakeFleet(options: { clusters: number; nodesPerCluster: number; token: string }): Promise<FakeFleet> {
  const closers: Array<() => Promise<void>> = [];
  const clusters: FakeCluster[] = [];
  try {
    for (let c = 0; c < options.clusters; c += 1) {
      const clusterId = `bench-${c + 1}`;
      const nodeIds = Array.from({ length: options.nodesPerCluster }, (_, i) => `n${i + 1}`);
      const nodes: FakeNode[] = [];
      for (const nodeId of nodeIds) {
        const started = await startNode(clusterId, nodeIds, nodeId, options.token);
        closers.push(started.close);
        nodes.push(started.node);
      }
      clusters.push({ clusterId, nodes });
    }
  } catch (error) {
    await Promise.all(closers.map((close) => close()));
    throw error;
  }
  return { clusters, token: options.token, close: async () => void (await Promise.all(closers.map((close) => close()))) };
}
