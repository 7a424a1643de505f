import { epochNoun, formatDurationMs } from './derive';
import type { Alert, AlertSeverity, ClusterModel, TimelineEntry } from './types';

/**
 * Alert rules. Each rule is a pure function from the model to the conditions
 * that hold now; `reconcileAlerts` turns the difference between those and the
 * active alerts into raised, changed and cleared alerts. The reducer runs both
 * on every message, so playback raises the very same alerts at the very same
 * times as the live view did.
 */

export interface AlertCondition extends Pick<Alert, 'id' | 'rule' | 'severity' | 'title' | 'detail' | 'nodeId'> {
  /** Mute applied when the alert is raised: set for leader changes an operator caused. */
  mutedOnRaiseUntilMs: number | null;
}

export type TimelineNote = Omit<TimelineEntry, 'sequence'>;

const severityRank: Record<AlertSeverity, number> = { info: 0, warning: 1, critical: 2 };

export function compareSeverity(a: AlertSeverity, b: AlertSeverity): number {
  return severityRank[a] - severityRank[b];
}

function condition(fields: Omit<AlertCondition, 'mutedOnRaiseUntilMs'> & { mutedOnRaiseUntilMs?: number | null }): AlertCondition {
  return { mutedOnRaiseUntilMs: null, ...fields };
}

/** The end of the grace period of the latest operator operation still running, if any. */
function operatorGraceUntilMs(model: ClusterModel): number | null {
  let until: number | null = null;
  for (const operation of model.operations) {
    if (operation.graceUntilMs > model.nowMs && (until === null || operation.graceUntilMs > until)) until = operation.graceUntilMs;
  }
  return until;
}

function hasBelievedStatus(model: ClusterModel): boolean {
  return Object.values(model.nodes).some((node) => node.status !== null && node.reachability !== 'unreachable');
}

export function noLeaderRule(model: ClusterModel): AlertCondition[] {
  const { config } = model;
  // With no node in sight the hub cannot tell a leaderless cluster from its own lost network; the unreachable alerts say that.
  if (model.leaderlessSinceMs === null || model.leader !== null || !hasBelievedStatus(model)) return [];
  const leaderlessMs = model.nowMs - model.leaderlessSinceMs;
  if (leaderlessMs <= config.leaderlessWarningAfterMs) return [];
  const critical = leaderlessMs > config.leaderlessCriticalAfterMs;
  const previous = model.previousLeader === null ? 'no leader has been seen yet' : `the last leader was ${model.previousLeader.nodeId} in ${epochNoun(model.engine)} ${model.previousLeader.epoch}`;
  const limitMs = critical ? config.leaderlessCriticalAfterMs : config.leaderlessWarningAfterMs;
  return [
    condition({
      id: 'no-leader',
      rule: 'no-leader',
      severity: critical ? 'critical' : 'warning',
      title: 'No leader',
      detail: `The cluster has had no leader for more than ${formatDurationMs(limitMs)}; ${previous}. Writes cannot commit until a leader is elected.`,
      nodeId: null,
      mutedOnRaiseUntilMs: operatorGraceUntilMs(model),
    }),
  ];
}

export function splitBrainRule(model: ClusterModel): AlertCondition[] {
  if (model.splitBrain === null) return [];
  const { epoch, leaders } = model.splitBrain;
  return [
    condition({
      id: 'split-brain',
      rule: 'split-brain',
      severity: 'critical',
      title: 'Split brain',
      detail: `${leaders.join(' and ')} are each named leader of ${epochNoun(model.engine)} ${epoch}. One epoch may have only one leader: this is a safety violation.`,
      nodeId: null,
    }),
  ];
}

export function followerLagRule(model: ClusterModel): AlertCondition[] {
  const { followerLagWarningEntries, followerLagWarningMs } = model.config;
  const conditions: AlertCondition[] = [];
  for (const follower of model.followers) {
    const overEntries = follower.lagEntries > followerLagWarningEntries;
    const overMs = follower.lagMs > followerLagWarningMs;
    if (!overEntries && !overMs) continue;
    conditions.push(
      condition({
        id: `lag:${follower.nodeId}`,
        rule: 'follower-lag',
        // A learner does not count towards the quorum, so its lag is worth knowing but not worth waking anyone.
        severity: follower.voter ? 'warning' : 'info',
        title: `${follower.nodeId} is lagging`,
        detail: `${follower.nodeId} trails the leader by ${follower.lagEntries} entries and ${formatDurationMs(follower.lagMs)} (limits ${followerLagWarningEntries} entries, ${formatDurationMs(followerLagWarningMs)}).`,
        nodeId: follower.nodeId,
      }),
    );
  }
  return conditions;
}

export function nodeUnreachableRule(model: ClusterModel): AlertCondition[] {
  const conditions: AlertCondition[] = [];
  for (const node of Object.values(model.nodes)) {
    if (node.reachability !== 'unreachable') continue;
    // The detail stays fixed while the condition holds, so the alert does not churn on every tick.
    const seen = node.lastSeenAtMs === null ? 'it has never reported' : 'what this screen shows of it is its last report';
    const link = node.linkState === null ? '' : ` (link ${node.linkState})`;
    conditions.push(
      condition({
        id: `unreachable:${node.nodeId}`,
        rule: 'node-unreachable',
        severity: 'warning',
        title: `${node.nodeId} is unreachable`,
        detail: `The hub cannot reach ${node.nodeId}${link}; ${seen}.`,
        nodeId: node.nodeId,
      }),
    );
  }
  return conditions;
}

export function corruptionRule(model: ClusterModel): AlertCondition[] {
  const conditions: AlertCondition[] = [];
  for (const [nodeId, corruption] of Object.entries(model.corruption)) {
    conditions.push(
      condition({
        id: `corruption:${nodeId}`,
        rule: 'corruption-detected',
        // A torn tail is what a crash leaves behind and is truncated safely; anything else is damaged data.
        severity: corruption.tornTailOnly ? 'warning' : 'critical',
        title: `Corruption on ${nodeId}`,
        detail: `${corruption.outstanding} unrepaired finding${corruption.outstanding === 1 ? '' : 's'} on ${nodeId}; latest: ${corruption.detail}`,
        nodeId,
      }),
    );
  }
  // The reducer drops a repair once its hold time is over, which is what clears this informational alert.
  for (const [nodeId, repair] of Object.entries(model.repairs)) {
    conditions.push(
      condition({ id: `repaired:${nodeId}`, rule: 'corruption-repaired', severity: 'info', title: `Repaired on ${nodeId}`, detail: repair.detail, nodeId }),
    );
  }
  return conditions;
}

export function integrityNotServingRule(model: ClusterModel): AlertCondition[] {
  const conditions: AlertCondition[] = [];
  for (const node of Object.values(model.nodes)) {
    const integrity = node.status?.integrity ?? null;
    if (integrity === null || integrity.serving || node.reachability === 'unreachable') continue;
    conditions.push(
      condition({
        id: `not-serving:${node.nodeId}`,
        rule: 'integrity-not-serving',
        severity: 'critical',
        title: `${node.nodeId} refuses to serve`,
        detail: `${node.nodeId} holds data it cannot verify and refuses to serve${integrity.reason === null ? '.' : `: ${integrity.reason}`}`,
        nodeId: node.nodeId,
      }),
    );
  }
  return conditions;
}

export function faultToleranceRule(model: ClusterModel): AlertCondition[] {
  const { tolerable, tolerableMax, voters, healthy, quorum } = model.faultTolerance;
  if (tolerable === null || tolerable >= tolerableMax) return [];
  const critical = tolerable <= 0;
  const headline = tolerable < 0 ? 'Quorum lost' : tolerable === 0 ? 'Cannot lose another node' : `Can lose only ${tolerable} more node${tolerable === 1 ? '' : 's'}`;
  return [
    condition({
      id: 'fault-tolerance',
      rule: 'fault-tolerance',
      severity: critical ? 'critical' : 'warning',
      title: headline,
      detail: `${healthy} of ${voters} voters are healthy and the quorum is ${quorum}: the cluster can lose ${Math.max(0, tolerable)} more (at full strength ${tolerableMax}).`,
      nodeId: null,
    }),
  ];
}

export function leaderChangedRule(model: ClusterModel): AlertCondition[] {
  const latest = model.failovers.at(-1);
  if (latest === undefined) return [];
  const expiresAtMs = latest.atMs + model.config.leaderChangedAlertHoldMs;
  if (model.nowMs >= expiresAtMs) return [];
  const explained = latest.cause === 'planned transfer' || latest.cause === 'drill';
  return [
    condition({
      // One id per change: a mute or acknowledgement of a planned change must not hide a later failure.
      id: `leader-changed:${latest.to}@${latest.epoch}`,
      rule: 'leader-changed',
      severity: explained ? 'info' : 'warning',
      title: `Leader changed: ${latest.from} → ${latest.to}`,
      detail: `${latest.note}; ${latest.durationMs === 0 ? 'no leaderless gap was seen' : `${formatDurationMs(latest.durationMs)} without a leader`}.`,
      nodeId: latest.to,
      // A change the operator asked for is muted for its whole life: they are watching it already.
      mutedOnRaiseUntilMs: latest.operatorInitiated ? expiresAtMs : null,
    }),
  ];
}

export const alertRules: ReadonlyArray<(model: ClusterModel) => AlertCondition[]> = [
  splitBrainRule,
  noLeaderRule,
  faultToleranceRule,
  corruptionRule,
  integrityNotServingRule,
  nodeUnreachableRule,
  followerLagRule,
  leaderChangedRule,
];

export function evaluateAlertRules(model: ClusterModel): AlertCondition[] {
  return alertRules.flatMap((rule) => rule(model));
}

function maxOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

function alertNote(alert: Alert, atMs: number, text: string, severity: AlertSeverity): TimelineNote {
  return { atMs, kind: 'alert', severity, nodeId: alert.nodeId, text };
}

/**
 * Raises new conditions, updates changed ones and clears those that no longer
 * hold. An escalation (warning → critical) clears the acknowledgement: the
 * operator acknowledged something milder than what is happening now.
 */
export function reconcileAlerts(
  model: ClusterModel,
  conditions: AlertCondition[],
): { alerts: Alert[]; alertHistory: Alert[]; notes: TimelineNote[] } {
  const nowMs = model.nowMs;
  const wanted = new Map(conditions.map((entry) => [entry.id, entry]));
  const notes: TimelineNote[] = [];
  const alerts: Alert[] = [];
  const cleared: Alert[] = [];
  let changed = false;

  for (const alert of model.alerts) {
    const want = wanted.get(alert.id);
    if (want === undefined) {
      const done = { ...alert, clearedAtMs: nowMs };
      cleared.push(done);
      notes.push(alertNote(done, nowMs, `Cleared: ${alert.title}`, 'info'));
      changed = true;
      continue;
    }
    wanted.delete(alert.id);
    if (want.severity === alert.severity && want.title === alert.title && want.detail === alert.detail) {
      alerts.push(alert);
      continue;
    }
    const escalated = compareSeverity(want.severity, alert.severity) > 0;
    alerts.push({
      ...alert,
      severity: want.severity,
      title: want.title,
      detail: want.detail,
      acknowledged: escalated ? false : alert.acknowledged,
      acknowledgedAtMs: escalated ? null : alert.acknowledgedAtMs,
    });
    if (escalated) notes.push(alertNote(alert, nowMs, `Escalated to ${want.severity}: ${want.title}`, want.severity));
    changed = true;
  }

  for (const want of wanted.values()) {
    const alert: Alert = {
      id: want.id,
      rule: want.rule,
      severity: want.severity,
      title: want.title,
      detail: want.detail,
      nodeId: want.nodeId,
      raisedAtMs: nowMs,
      clearedAtMs: null,
      acknowledged: false,
      acknowledgedAtMs: null,
      mutedUntilMs: maxOrNull(model.mutes[want.id] ?? null, want.mutedOnRaiseUntilMs),
    };
    alerts.push(alert);
    notes.push(alertNote(alert, nowMs, `Raised: ${want.title}`, want.severity));
    changed = true;
  }

  if (!changed) return { alerts: model.alerts, alertHistory: model.alertHistory, notes };
  const alertHistory = cleared.length === 0 ? model.alertHistory : [...model.alertHistory, ...cleared].slice(-model.config.alertHistoryMax);
  return { alerts, alertHistory, notes };
}

export function isMuted(alert: Alert, nowMs: number): boolean {
  return alert.mutedUntilMs !== null && alert.mutedUntilMs > nowMs;
}
