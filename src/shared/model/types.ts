import type { ClusterEvent, DrillKind, EngineKind, FollowerProgress, LinkSummary, NodeStatus, StatusSample } from '../protocol';
import type { ModelConfig } from './config';

/**
 * The dashboard's model of one cluster. Plain data only (records and arrays,
 * no Map, no class) so that the recorder can store it as a keyframe and the
 * bridge can send it as it is.
 */

export type Health = 'healthy' | 'degraded' | 'no-leader' | 'split-brain' | 'unknown';
export type LinkState = LinkSummary['state'];
/** How well the hub can see a node: from its link and from the age of its last status. */
export type Reachability = 'reachable' | 'stale' | 'unreachable' | 'unknown';
export type AlertSeverity = 'critical' | 'warning' | 'info';
export type FailoverCause = 'planned transfer' | 'drill' | 'failure' | 'unknown';
export type ReplicationState = FollowerProgress['state'];

export interface NodeView {
  nodeId: string;
  /** The latest status the node reported; null for a voter we know of but never heard from. */
  status: NodeStatus | null;
  statusAtMs: number | null;
  endpoint: string | null;
  linkState: LinkState | null;
  /** The latest time anything (status, event) came from the node. */
  lastSeenAtMs: number | null;
  reachability: Reachability;
}

export interface LeaderView {
  nodeId: string;
  epoch: number;
  epochLabel: string;
  /** 'majority' when most reachable nodes name this leader; 'self-reported' when only the leader says so. */
  source: 'majority' | 'self-reported';
  sinceMs: number;
}

export interface FaultTolerance {
  voters: number;
  quorum: number;
  /** Voters that are reachable (by the hub or the leader) and follow the current leader. */
  healthy: number;
  /** How many more voters the cluster can lose and keep a quorum; null without a leader. */
  tolerable: number | null;
  /** What the configuration allows: voters - quorum. */
  tolerableMax: number;
}

export interface FollowerLag {
  nodeId: string;
  voter: boolean;
  state: ReplicationState;
  matchIndex: number;
  lagEntries: number;
  lagMs: number;
  lastContactMs: number | null;
  /** When the leader reported these figures. */
  atMs: number;
}

export interface LagPoint {
  atMs: number;
  lagEntries: number;
  lagMs: number;
}

export interface SplitBrain {
  epoch: number;
  leaders: string[];
}

export interface Failover {
  from: string;
  to: string;
  fromEpoch: number;
  epoch: number;
  epochLabel: string;
  /** When the new leader was first seen. */
  atMs: number;
  /** How long the cluster had no leader; 0 when the hub saw the handover directly. */
  durationMs: number;
  cause: FailoverCause;
  /** Started from this app, so its alerts were muted. */
  operatorInitiated: boolean;
  /** Plain words for the timeline, e.g. 'planned transfer to n3'. */
  note: string;
}

export type TimelineKind = 'leader' | 'election' | 'failover' | 'transfer' | 'drill' | 'alert' | 'integrity' | 'membership' | 'node' | 'operator';

export interface TimelineEntry {
  /** Increases by one per entry: a stable key for lists, also across dropped entries. */
  sequence: number;
  atMs: number;
  kind: TimelineKind;
  severity: AlertSeverity;
  nodeId: string | null;
  text: string;
}

export type AlertRule =
  | 'no-leader'
  | 'split-brain'
  | 'follower-lag'
  | 'node-unreachable'
  | 'corruption-detected'
  | 'corruption-repaired'
  | 'integrity-not-serving'
  | 'fault-tolerance'
  | 'leader-changed';

export interface Alert {
  /** Stable per condition: 'no-leader', 'lag:n2'. A re-raised alert keeps its id. */
  id: string;
  rule: AlertRule;
  severity: AlertSeverity;
  title: string;
  detail: string;
  nodeId: string | null;
  raisedAtMs: number;
  clearedAtMs: number | null;
  acknowledged: boolean;
  acknowledgedAtMs: number | null;
  /** The alert is muted while the model's time is before this. */
  mutedUntilMs: number | null;
}

/** A transfer or drill started from this app: it explains, and mutes, the leader change it causes. */
export interface OperatorOperation {
  type: 'transfer' | 'drill';
  /** The transfer's target or the drilled node. */
  nodeId: string;
  drill: DrillKind | null;
  startedAtMs: number;
  graceUntilMs: number;
}

/** What happened since the last leader was seen, to name the cause of the next leader change. */
export interface LeaderChangeEvidence {
  failure: string | null;
  transferTo: string | null;
  drill: string | null;
}

export interface CorruptionState {
  outstanding: number;
  /** Only torn tails so far: expected after a crash, so a warning rather than critical. */
  tornTailOnly: boolean;
  detail: string;
  sinceMs: number;
}

export interface RepairState {
  atMs: number;
  detail: string;
}

export interface ClusterModel {
  config: ModelConfig;
  /** The model's time: the latest time any message carried. Never read from a clock. */
  nowMs: number;
  clusterId: string | null;
  engine: EngineKind | null;
  nodes: Record<string, NodeView>;
  leader: LeaderView | null;
  /** The last leader before the current leaderless gap, to report the failover when a new one appears. */
  previousLeader: { nodeId: string; epoch: number } | null;
  epoch: number;
  epochLabel: string;
  leaderlessSinceMs: number | null;
  splitBrain: SplitBrain | null;
  faultTolerance: FaultTolerance;
  followers: FollowerLag[];
  lagHistory: Record<string, LagPoint[]>;
  failovers: Failover[];
  health: Health;
  healthReason: string;
  /** Active alerts, in the order they were raised. */
  alerts: Alert[];
  /** Cleared alerts, oldest first, at most config.alertHistoryMax. */
  alertHistory: Alert[];
  /** Alert id → muted until; outlives a clear so a flapping alert stays muted. */
  mutes: Record<string, number>;
  operations: OperatorOperation[];
  evidence: LeaderChangeEvidence;
  corruption: Record<string, CorruptionState>;
  repairs: Record<string, RepairState>;
  recentKeys: string[];
  timeline: TimelineEntry[];
  nextSequence: number;
}

export type OperatorAction = { type: 'transfer'; to: string } | { type: 'drill'; nodeId: string; drill: DrillKind };

/** Everything that changes the model. Each message carries its own time. */
export type ModelMessage =
  | { kind: 'sample'; sample: StatusSample }
  | { kind: 'event'; event: ClusterEvent }
  | { kind: 'link'; nodeId: string; endpoint: string; state: LinkState; atMs: number }
  /** Lets time-based derivations advance when nothing else arrives: leaderless time, stale nodes, expiring alerts. */
  | { kind: 'tick'; atMs: number }
  | { kind: 'operator'; action: OperatorAction; atMs: number }
  | { kind: 'acknowledge'; alertId: string; atMs: number }
  /** durationMs 0 lifts a mute. */
  | { kind: 'mute'; alertId: string; durationMs: number; atMs: number };

/** A failover pre-flight check, as the failover dialog shows it. */
export interface PreflightCheck {
  check: string;
  ok: boolean;
  detail: string;
}
