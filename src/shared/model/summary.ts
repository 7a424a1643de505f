import type { DrillKind, EngineKind, IntegrityStatus, ProcessStatus, Role, StorageStatus } from '../protocol';
import { compareSeverity, isMuted } from './alerts';
import { epochNoun } from './derive';
import type {
  Alert,
  ClusterModel,
  Failover,
  FaultTolerance,
  FollowerLag,
  Health,
  LagPoint,
  LeaderView,
  LinkState,
  Reachability,
  SplitBrain,
  TimelineEntry,
} from './types';

/**
 * What the renderer needs of a cluster model, and no more: the hub pushes it
 * up to 30 times a second, so the bookkeeping (dedupe keys, evidence, mutes,
 * operations) stays behind and the long lists are cut to what a screen shows.
 */

/** Timeline entries sent per push; the full timeline stays in the model and the recording. */
export const summaryTimelineEntriesMax = 200;
export const summaryFailoversMax = 20;
export const summaryClearedAlertsMax = 20;

/** The role a card shows: 'unknown' for a voter never heard from; 'offline' when the hub cannot reach it. */
export type DisplayRole = Role | 'unknown';

export interface NodeCard {
  nodeId: string;
  role: DisplayRole;
  isLeader: boolean;
  voter: boolean;
  reachability: Reachability;
  linkState: LinkState | null;
  endpoint: string | null;
  lastSeenAtMs: number | null;
  epoch: number | null;
  epochLabel: string | null;
  lastIndex: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  /** As the leader reports it; null for the leader and for nodes the leader does not list. */
  replication: FollowerLag | null;
  integrity: IntegrityStatus | null;
  storage: StorageStatus | null;
  process: ProcessStatus | null;
  drillsAllowed: boolean;
  activeDrills: DrillKind[];
  transferringTo: string | null;
}

export interface AlertView extends Alert {
  muted: boolean;
}

export interface LagSeries {
  nodeId: string;
  points: LagPoint[];
}

export interface ClusterModelSummary {
  atMs: number;
  clusterId: string | null;
  engine: EngineKind | null;
  /** 'term', 'ballot' or 'epoch': the engine's own word. */
  epochNoun: string;
  health: Health;
  healthReason: string;
  leader: LeaderView | null;
  epoch: number;
  epochLabel: string;
  leaderlessSinceMs: number | null;
  splitBrain: SplitBrain | null;
  faultTolerance: FaultTolerance;
  nodes: NodeCard[];
  lagSeries: LagSeries[];
  lagThresholds: { entries: number; ms: number; windowMs: number };
  timeline: TimelineEntry[];
  /** Active alerts, most severe first, then newest first. */
  alerts: AlertView[];
  recentlyCleared: Alert[];
  failovers: Failover[];
  activeAlertCount: number;
  /** Active, unmuted and unacknowledged: what still asks for attention. */
  attentionAlertCount: number;
}

function displayRole(model: ClusterModel, nodeId: string): DisplayRole {
  const node = model.nodes[nodeId];
  if (node === undefined || node.status === null) return node?.reachability === 'unreachable' ? 'offline' : 'unknown';
  if (node.reachability === 'unreachable') return 'offline';
  return node.status.role;
}

function nodeCard(model: ClusterModel, nodeId: string, voters: Set<string>): NodeCard {
  const node = model.nodes[nodeId];
  const status = node?.status ?? null;
  return {
    nodeId,
    role: displayRole(model, nodeId),
    isLeader: model.leader?.nodeId === nodeId,
    voter: voters.has(nodeId),
    reachability: node?.reachability ?? 'unknown',
    linkState: node?.linkState ?? null,
    endpoint: node?.endpoint ?? null,
    lastSeenAtMs: node?.lastSeenAtMs ?? null,
    epoch: status?.epoch ?? null,
    epochLabel: status?.epochLabel ?? null,
    lastIndex: status?.lastIndex ?? null,
    commitIndex: status?.commitIndex ?? null,
    appliedIndex: status?.appliedIndex ?? null,
    replication: model.followers.find((follower) => follower.nodeId === nodeId) ?? null,
    integrity: status?.integrity ?? null,
    storage: status?.storage ?? null,
    process: status?.process ?? null,
    drillsAllowed: status?.drillsAllowed ?? false,
    activeDrills: status?.activeDrills ?? [],
    transferringTo: status?.transferringTo ?? null,
  };
}

function votersOf(model: ClusterModel): Set<string> {
  const leaderStatus = model.leader === null ? null : (model.nodes[model.leader.nodeId]?.status ?? null);
  if (leaderStatus !== null) return new Set(leaderStatus.voters);
  return new Set(Object.values(model.nodes).flatMap((node) => node.status?.voters ?? []));
}

export function summarizeForRenderer(model: ClusterModel): ClusterModelSummary {
  const voters = votersOf(model);
  const alerts = model.alerts
    .map((alert) => ({ ...alert, muted: isMuted(alert, model.nowMs) }))
    .sort((a, b) => compareSeverity(b.severity, a.severity) || b.raisedAtMs - a.raisedAtMs);
  return {
    atMs: model.nowMs,
    clusterId: model.clusterId,
    engine: model.engine,
    epochNoun: epochNoun(model.engine),
    health: model.health,
    healthReason: model.healthReason,
    leader: model.leader,
    epoch: model.epoch,
    epochLabel: model.epochLabel,
    leaderlessSinceMs: model.leaderlessSinceMs,
    splitBrain: model.splitBrain,
    faultTolerance: model.faultTolerance,
    nodes: Object.keys(model.nodes)
      .sort()
      .map((nodeId) => nodeCard(model, nodeId, voters)),
    lagSeries: Object.keys(model.lagHistory)
      .sort()
      .map((nodeId) => ({ nodeId, points: model.lagHistory[nodeId] ?? [] })),
    lagThresholds: { entries: model.config.followerLagWarningEntries, ms: model.config.followerLagWarningMs, windowMs: model.config.lagHistoryWindowMs },
    timeline: model.timeline.slice(-summaryTimelineEntriesMax),
    alerts,
    recentlyCleared: model.alertHistory.slice(-summaryClearedAlertsMax),
    failovers: model.failovers.slice(-summaryFailoversMax),
    activeAlertCount: alerts.length,
    attentionAlertCount: alerts.filter((alert) => !alert.muted && !alert.acknowledged).length,
  };
}

/** What the overview and the desktop shell need of every cluster: small enough to push for dozens of clusters. */
export interface ClusterOverviewFacts {
  atMs: number;
  health: Health;
  healthReason: string;
  leader: string | null;
  epochNoun: string;
  epochLabel: string;
  tolerable: number | null;
  activeAlertCount: number;
  attentionAlertCount: number;
  /** Active alerts, most severe first; the tray badge and notifications read these. */
  alerts: AlertView[];
}

export function summarizeOverview(model: ClusterModel): ClusterOverviewFacts {
  const alerts = model.alerts
    .map((alert) => ({ ...alert, muted: isMuted(alert, model.nowMs) }))
    .sort((a, b) => compareSeverity(b.severity, a.severity) || b.raisedAtMs - a.raisedAtMs);
  return {
    atMs: model.nowMs,
    health: model.health,
    healthReason: model.healthReason,
    leader: model.leader?.nodeId ?? null,
    epochNoun: epochNoun(model.engine),
    epochLabel: model.epochLabel,
    tolerable: model.faultTolerance.tolerable,
    activeAlertCount: alerts.length,
    attentionAlertCount: alerts.filter((alert) => !alert.muted && !alert.acknowledged).length,
    alerts,
  };
}
