import { randomBytes } from 'node:crypto';
import pino from 'pino';
import type { Logger } from '../../shared/logger';
import { createRandom } from '../../shared/random';
import { createHttpApi } from '../api/http';
import { NodeMetrics } from '../api/metrics';
import { startTelemetry } from '../api/telemetry';
import { raftFactory } from '../consensus/raft';
import { KvStateMachine } from '../kv/state-machine';
import { IntegrityEngine, repairRetryMs } from '../integrity/engine';
import { Storage, walLimitsDefault, type StorageOpened, type StorageOptions } from '../storage';
import type { RaftMessage } from '../consensus/raft';
import type { Clock } from '../../shared/logger';
import type { PeerTransport } from '../transport';
import type { AgentConfig } from './config';
import { envelopeParser, type PeerEnvelope } from './envelope';
import { NodeGate } from './gate';
import { NodeHost } from './host';
import { createPeerTransport } from './peer-transport';
import { TransportRepairLink } from './repair-link';

export interface RunningAgent {
  /** Null while the node repairs its storage on start. */
  readonly host: NodeHost<RaftMessage> | null;
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
 * The agent's composition root: integrity engine, storage, engine, key-value
 * store, peer transport, HTTP API, telemetry and metrics, wired once.
 *
 * Damage found in storage on start is repaired before the engine exists:
 * from local parity at once, else from peers over the transport while the
 * node answers 503 `not_serving` and its status says why. The engine is
 * started only on a storage that verified clean, so it never votes or acks
 * for entries it cannot read (Protocol-Aware Recovery, FAST 2018).
 */
export async function startAgent(config: AgentConfig, logger: Logger): Promise<{ ok: true; agent: RunningAgent } | { ok: false; reason: string }> {
  const clock = { nowMs: () => Date.now() };
  const integrity = await IntegrityEngine.open({
    dataDir: config.dataDir,
    recordBytesMax: walLimitsDefault.recordBytesMax,
    scrubRateBytesPerSecond: config.scrubRateBytes,
    clock,
    logger,
  });
  const storageOptions: StorageOptions = { walLimits: { segmentBytesMax: config.segmentBytesMax }, walObserver: integrity.walObserver };
  let opened = await openRepairingLocally(config.dataDir, storageOptions, integrity);
  if (opened.kind === 'failed') return { ok: false, reason: opened.reason };

  const transport = await createPeerTransport({
    config,
    parse: envelopeParser(raftFactory.parseMessage),
    logger,
  });
  if (!transport.ok) {
    if (opened.kind === 'opened') await opened.data.storage.close();
    return { ok: false, reason: transport.reason };
  }
  const peerTransport = transport.transport;
  const repairLink = new TransportRepairLink(
    config.nodeId,
    config.peers.map((peer) => peer.id).filter((id) => id !== config.nodeId),
    (to, envelope) => peerTransport.send(to, envelope),
  );
  integrity.setPeerLink(repairLink);

  const bootId = randomBytes(6).toString('hex');
  const gate = new NodeGate({ config, bootId, clock, integrity });
  let host: NodeHost<RaftMessage> | null = null;
  let storage: Storage | null = null;
  const metrics = new NodeMetrics({ node: config.nodeId, cluster: config.clusterId }, () => gate.status());

  const startHost = (ready: StorageOpened): { ok: true } | { ok: false; reason: string } => {
    const built = buildHost(config, ready, { bootId, clock, logger, metrics, integrity, repairLink, transport: peerTransport });
    if (!built.ok) return built;
    storage = ready.storage;
    host = built.host;
    gate.attach(built.host);
    built.host.start();
    logger.info({}, 'storage verified; the engine runs');
    return { ok: true };
  };

  const tokens = { viewerToken: config.viewerToken, operatorToken: config.operatorToken };
  const api = createHttpApi({ service: gate, tokens, logger, metrics: () => metrics.render() });
  const telemetry = startTelemetry(api.server, {
    service: gate,
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
    await peerTransport.close();
    if (opened.kind === 'opened') await opened.data.storage.close();
    return { ok: false, reason: `cannot listen on ${config.bind}:${config.httpPort}: ${(error as Error).message}` };
  }

  let repairTimer: NodeJS.Timeout | null = null;
  let stopping = false;
  if (opened.kind === 'opened') {
    const started = startHost(opened.data);
    if (!started.ok) {
      await telemetry.close();
      await api.close();
      await peerTransport.close();
      await opened.data.storage.close();
      return { ok: false, reason: started.reason };
    }
  } else {
    // Not serving: peers' engine traffic is dropped (no votes, no acks); repair replies are taken, repair requests refused.
    peerTransport.onMessage((envelope) => {
      if (envelope.kind === 'repair-reply') repairLink.onReply(envelope);
      else if (envelope.kind === 'repair-request') {
        peerTransport.send(envelope.from, { kind: 'repair-reply', from: config.nodeId, to: envelope.from, id: envelope.id, result: { ok: false, error: { code: 'not_serving', message: `${config.nodeId} is repairing its own storage` } } });
      }
    });
    logger.error({ reason: integrity.notServingReason() }, 'storage damage could not be repaired locally; repairing from peers, not serving until then');
    const attempt = async (): Promise<void> => {
      repairTimer = null;
      if (stopping) return;
      for (const issue of integrity.pendingIssues()) await integrity.handleIssue(issue, 'recovery');
      if (integrity.pendingIssues().length === 0 && !stopping) {
        opened = await openRepairingLocally(config.dataDir, storageOptions, integrity);
        if (opened.kind === 'opened' && !stopping) {
          const started = startHost(opened.data);
          if (!started.ok) {
            integrity.block(started.reason);
            await opened.data.storage.close();
          }
          return;
        }
        if (opened.kind === 'failed') integrity.block(opened.reason);
      }
      if (!stopping) repairTimer = setTimeout(() => void attempt(), repairRetryMs);
    };
    repairTimer = setTimeout(() => void attempt(), repairRetryMs);
  }

  const address = api.server.address();
  const httpPort = typeof address === 'object' && address !== null ? address.port : config.httpPort;
  logger.info({ httpPort, peerPort: transport.port, drills: config.allowDrills, serving: integrity.serving() }, 'agent started');
  if (config.peerToken === undefined) logger.warn({}, 'no peer token: the peer port trusts any process that names this cluster and a member; set QUORUMSCOPE_PEER_TOKEN');

  return {
    ok: true,
    agent: {
      get host() {
        return host;
      },
      httpPort,
      peerPort: transport.port,
      stop: async () => {
        stopping = true;
        if (repairTimer !== null) clearTimeout(repairTimer);
        const running = host as NodeHost<RaftMessage> | null;
        if (running !== null) await running.stop();
        else {
          repairLink.close();
          await integrity.stop();
        }
        await telemetry.close();
        await api.close();
        await peerTransport.close();
        await (storage as Storage | null)?.close();
      },
    },
  };
}

type LocalOpen = { kind: 'opened'; data: StorageOpened } | { kind: 'damaged' } | { kind: 'failed'; reason: string };

/** Localises each damage that is more than a torn tail, repairs what local parity can, and reopens; bounded by `startupRepairRoundsMax`. */
async function openRepairingLocally(dataDir: string, options: StorageOptions, integrity: IntegrityEngine): Promise<LocalOpen> {
  for (let round = 0; round < startupRepairRoundsMax; round += 1) {
    const opened = await Storage.open(dataDir, options);
    if (opened.ok) {
      if (opened.data.report.wal.tornTail !== null) {
        // A torn tail was never acknowledged: truncating it is the one repair that needs no copy.
        integrity.noteTornTail(opened.data.report.wal.tornTail);
      }
      return { kind: 'opened', data: opened.data };
    }
    if (opened.issue === null) return { kind: 'failed', reason: `cannot open storage in ${dataDir}: ${opened.error.message}` };
    const repaired = await integrity.handleIssue(opened.issue, 'recovery');
    if (!repaired.ok) return { kind: 'damaged' };
  }
  return { kind: 'failed', reason: `storage in ${dataDir} still shows damage after ${startupRepairRoundsMax} local repairs` };
}

/** Damaged files repaired one by one on start before giving up on local repair. */
const startupRepairRoundsMax = 256;

function buildHost(
  config: AgentConfig,
  opened: StorageOpened,
  parts: { bootId: string; clock: Clock; logger: Logger; metrics: NodeMetrics; integrity: IntegrityEngine; repairLink: TransportRepairLink; transport: PeerTransport<PeerEnvelope<RaftMessage>> },
): { ok: true; host: NodeHost<RaftMessage> } | { ok: false; reason: string } {
  const { storage, restored } = opened;
  let kv = new KvStateMachine();
  if (restored.snapshot !== null) {
    const restoredKv = KvStateMachine.restore(restored.snapshot.data);
    if (!restoredKv.ok) return { ok: false, reason: `snapshot at index ${restored.snapshot.meta.index} does not restore: ${restoredKv.error.message}` };
    kv = restoredKv.data;
  }
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
  const host = new NodeHost({
    nodeId: config.nodeId,
    clusterId: config.clusterId,
    engine,
    engineKind: 'raft',
    storage,
    integrity: parts.integrity,
    repairLink: parts.repairLink,
    transport: parts.transport,
    kv,
    appliedIndex: restored.snapshot?.meta.index ?? 0,
    appliedEpoch: restored.snapshot?.meta.epoch ?? 0,
    snapshotIndex: restored.snapshot?.meta.index ?? 0,
    clock: parts.clock,
    logger: parts.logger,
    metrics: parts.metrics,
    bootId: parts.bootId,
    drillsAllowed: config.allowDrills,
    tickIntervalMs: config.tickIntervalMs,
    electionTimeoutTicks: config.electionTimeoutTicks,
    snapshotEntries: config.snapshotEntries,
    stateCheckIntervalMs: config.stateCheckIntervalMs,
    stateCheckEntries: config.stateCheckEntries,
  });
  return { ok: true, host };
}
