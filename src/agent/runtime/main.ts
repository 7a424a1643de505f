import { randomBytes } from 'node:crypto';
import pino from 'pino';
import type { Logger } from '../../shared/logger';
import { createRandom } from '../../shared/random';
import { createHttpApi } from '../api/http';
import { NodeMetrics } from '../api/metrics';
import { startTelemetry } from '../api/telemetry';
import { raftFactory } from '../consensus/raft';
import { KvStateMachine } from '../kv/state-machine';
import { Storage } from '../storage';
import type { AgentConfig } from './config';
import { envelopeParser } from './envelope';
import { NodeHost } from './host';
import { createPeerTransport } from './peer-transport';

export interface RunningAgent {
  host: NodeHost<import('../consensus/raft').RaftMessage>;
  httpPort: number;
  peerPort: number;
  stop(): Promise<void>;
}

/** Telemetry samples at 10 Hz and ships two samples per batch. */
const samplesPerBatch = 2;

export function createAgentLogger(config: Pick<AgentConfig, 'logLevel' | 'nodeId' | 'clusterId'>): Logger {
  // Tokens never reach the log: nothing logs the config, and pino redacts them if anything tries.
  return pino(
    { level: config.logLevel, base: { node: config.nodeId, cluster: config.clusterId }, redact: ['viewerToken', 'operatorToken', 'token', 'authorization'] },
    pino.destination(2),
  );
}

/**
 * The agent's composition root: storage, engine, key-value store, peer
 * transport, HTTP API, telemetry and metrics, wired once. Damage found in
 * storage on start is an error value: the node does not serve.
 */
export async function startAgent(config: AgentConfig, logger: Logger): Promise<{ ok: true; agent: RunningAgent } | { ok: false; reason: string }> {
  const opened = await Storage.open(config.dataDir);
  if (!opened.ok) return { ok: false, reason: `cannot open storage in ${config.dataDir}: ${opened.error.message}` };
  const { storage, restored, report } = opened.data;
  if (report.wal.tornTail !== null) logger.warn({ tornTail: report.wal.tornTail }, 'recovered: truncated a torn WAL tail');

  let kv = new KvStateMachine();
  if (restored.snapshot !== null) {
    const restoredKv = KvStateMachine.restore(restored.snapshot.data);
    if (!restoredKv.ok) {
      await storage.close();
      return { ok: false, reason: `snapshot at index ${restored.snapshot.meta.index} does not restore: ${restoredKv.error.message}` };
    }
    kv = restoredKv.data;
  }

  const bootId = randomBytes(6).toString('hex');
  const seed = randomBytes(4).readUInt32LE(0);
  const voters = config.peers.map((peer) => peer.id);
  const engine = raftFactory.create(
    {
      id: config.nodeId,
      initialMembership: { voters, learners: [] },
      random: createRandom(seed),
      electionTimeoutTicks: config.electionTimeoutTicks,
      heartbeatIntervalTicks: config.heartbeatIntervalTicks,
      preVote: true,
      checkQuorum: true,
      inflightAppendsMax: 256,
      appendBytesMax: 1024 * 1024,
      tickIntervalMs: config.tickIntervalMs,
    },
    restored,
  );

  const transport = await createPeerTransport({
    config,
    parse: envelopeParser(raftFactory.parseMessage),
    logger,
  });
  if (!transport.ok) {
    await storage.close();
    return { ok: false, reason: transport.reason };
  }

  const clock = { nowMs: () => Date.now() };
  let host: NodeHost<import('../consensus/raft').RaftMessage> | null = null;
  const metrics = new NodeMetrics({ node: config.nodeId, cluster: config.clusterId }, () => {
    if (host === null) throw new Error('metrics read before the host started');
    return host.status();
  });
  host = new NodeHost({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    engine,
    engineKind: 'raft',
    storage,
    transport: transport.transport,
    kv,
    appliedIndex: restored.snapshot?.meta.index ?? 0,
    appliedEpoch: restored.snapshot?.meta.epoch ?? 0,
    snapshotIndex: restored.snapshot?.meta.index ?? 0,
    clock,
    logger,
    metrics,
    bootId,
    drillsAllowed: config.allowDrills,
    tickIntervalMs: config.tickIntervalMs,
    electionTimeoutTicks: config.electionTimeoutTicks,
    snapshotEntries: config.snapshotEntries,
  });

  const tokens = { viewerToken: config.viewerToken, operatorToken: config.operatorToken };
  const api = createHttpApi({ service: host, tokens, logger, metrics: () => metrics.render() });
  const telemetry = startTelemetry(api.server, {
    service: host,
    tokens,
    clock,
    logger,
    sampleIntervalMs: config.statusIntervalMs,
    samplesPerBatch,
  });
  try {
    await api.listen({ host: config.bind, port: config.httpPort });
  } catch (error) {
    await telemetry.close();
    await transport.transport.close();
    await storage.close();
    return { ok: false, reason: `cannot listen on ${config.bind}:${config.httpPort}: ${(error as Error).message}` };
  }
  host.start();
  const address = api.server.address();
  const httpPort = typeof address === 'object' && address !== null ? address.port : config.httpPort;
  logger.info({ httpPort, peerPort: transport.port, drills: config.allowDrills }, 'agent started');

  const running = host;
  return {
    ok: true,
    agent: {
      host: running,
      httpPort,
      peerPort: transport.port,
      stop: async () => {
        await running.stop();
        await telemetry.close();
        await api.close();
        await transport.transport.close();
        await storage.close();
      },
    },
  };
}
