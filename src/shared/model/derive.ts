import type { EngineKind, NodeStatus } from '../protocol';
import type { ModelConfig } from './config';
import type { FaultTolerance, FollowerLag, LeaderView, LinkState, NodeView, Reachability, SplitBrain } from './types';

/**
 * Pure derivations from the nodes' latest statuses. Each takes what it needs
 * and returns a value; the reducer decides when to call them.
 */

const reachabilityRank: Record<Reachability, number> = { reachable: 0, stale: 1, unknown: 2, unreachable: 3 };

function worse(a: Reachability, b: Reachability): Reachability {
  return reachabilityRank[a] >= reachabilityRank[b] ? a : b;
}

function reachabilityFromLink(state: LinkState | null): Reachability {
  switch (state) {
    case null:
    case 'connected':
      return 'reachable';
    case 'connecting':
    case 'stale':
      return 'stale';
    case 'unreachable':
    case 'refused':
      return 'unreachable';
  }
}

function reachabilityFromAge(statusAtMs: number | null, nowMs: number, config: ModelConfig): Reachability {
  if (statusAtMs === null) return 'unknown';
  const ageMs = nowMs - statusAtMs;
  if (ageMs <= config.nodeStaleAfterMs) return 'reachable';
  if (ageMs <= config.nodeUnreachableAfterMs) return 'stale';
  return 'unreachable';
}

/** The worse of what the link says and what the age of the last status says. */
export function deriveReachability(node: NodeView, nowMs: number, config: ModelConfig): Reachability {
  return worse(reachabilityFromLink(node.linkState), reachabilityFromAge(node.statusAtMs, nowMs, config));
}

/** Nodes whose last status may still be believed: seen recently enough, and not offline. */
export function believedStatuses(nodes: Record<string, NodeView>): NodeStatus[] {
  const statuses: NodeStatus[] = [];
  for (const node of Object.values(nodes)) {
    if (node.status === null || node.reachability === 'unreachable' || node.status.role === 'offline') continue;
    statuses.push(node.status);
  }
  return statuses;
}

/**
 * The current leader: the leader of the highest epoch that a majority of the
 * believable nodes name; failing that, the highest-epoch node that says it
 * leads. A lone stale claim must not outvote the cluster, which is why the
 * majority comes first.
 */
export function deriveLeader(statuses: NodeStatus[], previous: LeaderView | null, nowMs: number): LeaderView | null {
  const votes = new Map<string, { leader: string; epoch: number; count: number }>();
  for (const status of statuses) {
    if (status.leader === null) continue;
    const key = `${status.epoch}\u0000${status.leader}`;
    const entry = votes.get(key) ?? { leader: status.leader, epoch: status.epoch, count: 0 };
    entry.count += 1;
    votes.set(key, entry);
  }
  const majority = Math.floor(statuses.length / 2) + 1;
  let chosen: { leader: string; epoch: number; source: LeaderView['source'] } | null = null;
  for (const vote of votes.values()) {
    if (vote.count < majority) continue;
    if (chosen === null || vote.epoch > chosen.epoch) chosen = { leader: vote.leader, epoch: vote.epoch, source: 'majority' };
  }
  if (chosen === null) {
    for (const status of statuses) {
      if (status.role !== 'leader') continue;
      if (chosen === null || status.epoch > chosen.epoch) chosen = { leader: status.nodeId, epoch: status.epoch, source: 'self-reported' };
    }
  }
  if (chosen === null) return null;
  const label = statuses.find((status) => status.nodeId === chosen.leader && status.epoch === chosen.epoch)?.epochLabel ?? previous?.epochLabel ?? String(chosen.epoch);
  const same = previous !== null && previous.nodeId === chosen.leader && previous.epoch === chosen.epoch;
  return { nodeId: chosen.leader, epoch: chosen.epoch, epochLabel: label, source: chosen.source, sinceMs: same ? previous.sinceMs : nowMs };
}

/**
 * Two leaders in one epoch: either two nodes each claim to lead it, or nodes
 * name different leaders for it. Raft, Zab and a correctly numbered Paxos
 * never allow that, so any sighting is a safety violation, not a transient.
 */
export function deriveSplitBrain(statuses: NodeStatus[]): SplitBrain | null {
  const claims = new Map<number, Set<string>>();
  const claim = (epoch: number, leader: string) => {
    const leaders = claims.get(epoch) ?? new Set<string>();
    leaders.add(leader);
    claims.set(epoch, leaders);
  };
  for (const status of statuses) {
    if (status.role === 'leader') claim(status.epoch, status.nodeId);
    if (status.leader !== null) claim(status.epoch, status.leader);
  }
  let found: SplitBrain | null = null;
  for (const [epoch, leaders] of claims) {
    if (leaders.size < 2) continue;
    if (found === null || epoch > found.epoch) found = { epoch, leaders: [...leaders].sort() };
  }
  return found;
}

export function quorumOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The configured voters: as the leader states them, else as the highest-epoch node states them. */
export function configuredVoters(statuses: NodeStatus[], leaderStatus: NodeStatus | null): string[] {
  if (leaderStatus !== null) return leaderStatus.voters;
  let best: NodeStatus | null = null;
  for (const status of statuses) if (best === null || status.epoch > best.epoch) best = status;
  return best?.voters ?? [];
}

/**
 * "Can lose N more nodes": healthy voters minus the quorum. A voter is healthy
 * when it follows the current leader in the leader's epoch and either the hub
 * sees it or the leader heard from it lately; a node that refuses to serve
 * because of unverifiable data cannot be counted on.
 */
export function deriveFaultTolerance(
  voters: string[],
  nodes: Record<string, NodeView>,
  leader: LeaderView | null,
  leaderStatus: NodeStatus | null,
  config: ModelConfig,
): FaultTolerance {
  const quorum = voters.length === 0 ? 0 : quorumOf(voters.length);
  const tolerableMax = voters.length - quorum;
  if (leader === null) return { voters: voters.length, quorum, healthy: 0, tolerable: null, tolerableMax };
  const healthy = voters.filter((voter) => isHealthyVoter(voter, nodes[voter], leader, leaderStatus, config)).length;
  return { voters: voters.length, quorum, healthy, tolerable: healthy - quorum, tolerableMax };
}

function isHealthyVoter(voter: string, node: NodeView | undefined, leader: LeaderView, leaderStatus: NodeStatus | null, config: ModelConfig): boolean {
  const status = node?.status ?? null;
  if (status !== null && (status.role === 'offline' || status.integrity?.serving === false)) return false;
  // The leader counts when the hub sees it, or when a majority names it (the hub's path to it may be what failed).
  if (voter === leader.nodeId) return node?.reachability === 'reachable' || leader.source === 'majority';
  const seenByHub = node?.reachability === 'reachable' && status !== null && status.epoch === leader.epoch && status.leader === leader.nodeId;
  if (seenByHub) return true;
  const progress = leaderStatus?.followers.find((follower) => follower.nodeId === voter);
  return progress !== undefined && progress.lastContactMs !== null && progress.lastContactMs <= config.followerContactAgeMsMax;
}

/** Each follower's lag as the current leader reports it. */
export function deriveFollowers(leaderStatus: NodeStatus | null, leaderStatusAtMs: number | null): FollowerLag[] {
  if (leaderStatus === null || leaderStatusAtMs === null) return [];
  return leaderStatus.followers.map((follower) => ({
    nodeId: follower.nodeId,
    voter: follower.voter,
    state: follower.state,
    matchIndex: follower.matchIndex,
    lagEntries: follower.lagEntries,
    lagMs: follower.lagMs,
    lastContactMs: follower.lastContactMs,
    atMs: leaderStatusAtMs,
  }));
}

/** The word each engine uses for its epoch, for plain-language text. */
export function epochNoun(engine: EngineKind | null): string {
  switch (engine) {
    case 'raft':
    case 'etcd':
      return 'term';
    case 'paxos':
      return 'ballot';
    case 'zab':
    case 'zookeeper':
    case null:
      return 'epoch';
  }
}

/** A duration in plain words: '850 ms', '1.2 s', '3 min 5 s'. */
export function formatDurationMs(durationMs: number): string {
  if (durationMs < 1_000) return `${Math.round(durationMs)} ms`;
  if (durationMs < 60_000) return `${(durationMs / 1_000).toFixed(durationMs < 10_000 ? 1 : 0)} s`;
  const minutes = Math.floor(durationMs / 60_000);
  const seconds = Math.round((durationMs % 60_000) / 1_000);
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}
