import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ClusterIdSchema, NodeIdSchema, describeIssues, err, ok, type Result } from '../../shared/protocol';

/**
 * The agent's configuration: flags or a JSON file (flags win). Tokens may also
 * come from the environment, which keeps them out of `ps` output.
 */
const port = z.number().int().min(0).max(65_535);
const host = z.string().min(1).max(255);

export const PeerSchema = z.object({ id: NodeIdSchema, host, port: port.min(1) });
export type Peer = z.infer<typeof PeerSchema>;

const tokenSchema = z.string().min(16, 'tokens must be at least 16 characters').max(512);

export const AgentConfigSchema = z
  .object({
    nodeId: NodeIdSchema,
    clusterId: ClusterIdSchema,
    engine: z.enum(['raft']),
    /** Every voter of the initial cluster, this node included. */
    peers: z.array(PeerSchema).min(1).max(64),
    dataDir: z.string().min(1).max(4096),
    bind: host.default('127.0.0.1'),
    httpPort: port,
    peerPort: port,
    viewerToken: tokenSchema,
    operatorToken: tokenSchema,
    /** The cluster's shared peer secret; without one the peer port trusts any peer naming this cluster. */
    peerToken: tokenSchema.optional(),
    allowDrills: z.boolean().default(false),
    tickIntervalMs: z.number().int().min(1).max(1_000).default(10),
    electionTimeoutTicks: z.number().int().min(3).max(1_000).default(15),
    heartbeatIntervalTicks: z.number().int().min(1).max(100).default(3),
    statusIntervalMs: z.number().int().min(20).max(10_000).default(100),
    /** Take a snapshot and compact the log after this many applied entries. */
    snapshotEntries: z.number().int().min(16).max(10_000_000).default(10_000),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
    /** The background scrubber's read rate: gentle by default so foreground writes keep their latency. */
    scrubRateBytes: z.number().int().min(4096).max(4 * 1024 * 1024 * 1024).default(8 * 1024 * 1024),
    /** WAL segments seal at this size; small values (tests, drills) give many sealed segments to check and repair. */
    segmentBytesMax: z.number().int().min(4096).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
    /** The leader proposes a state-check entry (replicas compare state hashes) at this interval; 0 turns the timer off. */
    stateCheckIntervalMs: z.number().int().min(0).max(24 * 3_600_000).default(10_000),
    /** ...and after this many applied entries since the last check, whichever comes first; 0 turns the count off. */
    stateCheckEntries: z.number().int().min(0).max(100_000_000).default(50_000),
  })
  .superRefine((config, context) => {
    const ids = config.peers.map((peer) => peer.id);
    if (new Set(ids).size !== ids.length) context.addIssue({ code: 'custom', path: ['peers'], message: 'peer ids must be unique' });
    if (!ids.includes(config.nodeId)) {
      context.addIssue({ code: 'custom', path: ['peers'], message: `peers must include this node (${config.nodeId})` });
    }
    if (config.viewerToken === config.operatorToken) {
      context.addIssue({ code: 'custom', path: ['operatorToken'], message: 'the operator token must differ from the viewer token' });
    }
    if (config.heartbeatIntervalTicks >= config.electionTimeoutTicks) {
      context.addIssue({ code: 'custom', path: ['heartbeatIntervalTicks'], message: 'must be smaller than electionTimeoutTicks' });
    }
  });
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** Parses `id=host:port`. */
export function parsePeer(text: string): Result<Peer> {
  const match = /^([^=]+)=(.+):(\d{1,5})$/.exec(text.trim());
  if (match === null) return err('invalid_config', `invalid peer "${text}": expected id=host:port`);
  const parsed = PeerSchema.safeParse({ id: match[1], host: match[2], port: Number(match[3]) });
  if (!parsed.success) return err('invalid_config', `invalid peer "${text}": ${describeIssues(parsed.error)}`);
  return ok(parsed.data);
}

export interface AgentFlags {
  config?: string;
  nodeId?: string;
  clusterId?: string;
  engine?: string;
  peer?: string[];
  dataDir?: string;
  bind?: string;
  httpPort?: string;
  peerPort?: string;
  viewerToken?: string;
  operatorToken?: string;
  peerToken?: string;
  allowDrills?: boolean;
  tickIntervalMs?: string;
  electionTimeoutTicks?: string;
  heartbeatIntervalTicks?: string;
  logLevel?: string;
  scrubRateBytes?: string;
  segmentBytesMax?: string;
  snapshotEntries?: string;
  stateCheckIntervalMs?: string;
  stateCheckEntries?: string;
}

function numberOrUndefined(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : value;
}

function readConfigFile(file: string): Result<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return err('invalid_config', `cannot read config file ${file}: ${(error as Error).message}`);
  }
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      return err('invalid_config', `config file ${file} must hold a JSON object`);
    }
    return ok(json as Record<string, unknown>);
  } catch (error) {
    return err('invalid_config', `config file ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Merges file, flags and environment, then validates; the error names the field. */
export function resolveAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv): Result<AgentConfig> {
  let base: Record<string, unknown> = {};
  if (flags.config !== undefined) {
    const file = readConfigFile(flags.config);
    if (!file.ok) return file;
    base = file.data;
  }
  let peers: unknown = base.peers;
  if (flags.peer !== undefined && flags.peer.length > 0) {
    const parsedPeers: Peer[] = [];
    for (const text of flags.peer) {
      const peer = parsePeer(text);
      if (!peer.ok) return peer;
      parsedPeers.push(peer.data);
    }
    peers = parsedPeers;
  }
  const merged: Record<string, unknown> = {
    ...base,
    peers,
    viewerToken: flags.viewerToken ?? env.QUORUMSCOPE_VIEWER_TOKEN ?? base.viewerToken,
    operatorToken: flags.operatorToken ?? env.QUORUMSCOPE_OPERATOR_TOKEN ?? base.operatorToken,
    peerToken: flags.peerToken ?? env.QUORUMSCOPE_PEER_TOKEN ?? base.peerToken,
  };
  const overrides: Record<string, unknown> = {
    nodeId: flags.nodeId,
    clusterId: flags.clusterId,
    engine: flags.engine,
    dataDir: flags.dataDir,
    bind: flags.bind,
    httpPort: numberOrUndefined(flags.httpPort),
    peerPort: numberOrUndefined(flags.peerPort),
    allowDrills: flags.allowDrills ? true : undefined,
    tickIntervalMs: numberOrUndefined(flags.tickIntervalMs),
    electionTimeoutTicks: numberOrUndefined(flags.electionTimeoutTicks),
    heartbeatIntervalTicks: numberOrUndefined(flags.heartbeatIntervalTicks),
    logLevel: flags.logLevel,
    scrubRateBytes: numberOrUndefined(flags.scrubRateBytes),
    segmentBytesMax: numberOrUndefined(flags.segmentBytesMax),
    snapshotEntries: numberOrUndefined(flags.snapshotEntries),
    stateCheckIntervalMs: numberOrUndefined(flags.stateCheckIntervalMs),
    stateCheckEntries: numberOrUndefined(flags.stateCheckEntries),
  };
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) merged[key] = value;
  const parsed = AgentConfigSchema.safeParse(merged);
  if (!parsed.success) return err('invalid_config', `invalid agent configuration: ${describeIssues(parsed.error)}`);
  return ok(parsed.data);
}
