import type { ClusterModel } from '../../../shared/model';
import type { Incident, IncidentSeverity, IncidentTrigger } from '../../../shared/protocol';

/** Watch the cluster from this long before the first trigger... */
export const incidentPreRollMs = 30_000;
/** ...to this long after the last one; a trigger inside an open incident extends it. */
export const incidentPostRollMs = 30_000;

export interface TriggerFound {
  trigger: IncidentTrigger;
  severity: IncidentSeverity;
  title: string;
  atMs: number;
}

/** What the detector has already seen, so that each condition opens an incident once. */
export interface DetectorState {
  failovers: ClusterModel['failovers'] | null;
  alerts: ClusterModel['alerts'] | null;
  seenFailoverAtMs: number;
  seenAlertKeys: Set<string>;
}

export function createDetectorState(): DetectorState {
  return { failovers: null, alerts: null, seenFailoverAtMs: Number.NEGATIVE_INFINITY, seenAlertKeys: new Set() };
}

function triggerOfAlert(alert: ClusterModel['alerts'][number]): IncidentTrigger | null {
  switch (alert.rule) {
    case 'no-leader':
      return 'lost-quorum';
    // Reduced tolerance is not an incident by itself: a quorum that is really lost shows as no leader.
    case 'fault-tolerance':
      return null;
    case 'split-brain':
      return 'split-brain';
    case 'corruption-detected':
    case 'integrity-not-serving':
      return 'corruption';
    case 'follower-lag':
      return 'lag-spike';
    default:
      return null;
  }
}

/**
 * The incident triggers a model shows that the detector has not seen yet: a
 * new failover, or a newly raised alert of a rule that matters. Mutates only
 * the detector state; cheap when nothing changed (the reducer keeps arrays).
 */
export function detectTriggers(state: DetectorState, model: ClusterModel): TriggerFound[] {
  if (model.failovers === state.failovers && model.alerts === state.alerts) return [];
  state.failovers = model.failovers;
  state.alerts = model.alerts;
  const found: TriggerFound[] = [];
  for (const failover of model.failovers) {
    if (failover.atMs <= state.seenFailoverAtMs) continue;
    state.seenFailoverAtMs = failover.atMs;
    found.push({
      trigger: 'failover',
      severity: failover.operatorInitiated ? 'info' : 'critical',
      title: `Failover ${failover.from} → ${failover.to} (${failover.note})`,
      atMs: failover.atMs,
    });
  }
  for (const alert of model.alerts) {
    const trigger = triggerOfAlert(alert);
    if (trigger === null) continue;
    const key = `${alert.id}@${alert.raisedAtMs}`;
    if (state.seenAlertKeys.has(key)) continue;
    state.seenAlertKeys.add(key);
    found.push({ trigger, severity: alert.severity, title: alert.title, atMs: alert.raisedAtMs });
  }
  // Keys of alerts that are gone can never come back with the same raise time.
  if (state.seenAlertKeys.size > 1_000) state.seenAlertKeys = new Set(model.alerts.map((alert) => `${alert.id}@${alert.raisedAtMs}`));
  return found;
}

const severityRank: Record<IncidentSeverity, number> = { info: 0, warning: 1, critical: 2 };
/** Which trigger names an incident when several fall into it: the most specific account of what happened. */
const triggerRank: Record<IncidentTrigger, number> = { bookmark: 0, 'lag-spike': 1, 'lost-quorum': 2, failover: 3, corruption: 4, 'split-brain': 5 };

/** Extends `open` with a trigger inside its range, or opens a new incident. Pure. */
export function absorbTrigger(open: Incident | null, found: TriggerFound, fresh: () => Omit<Incident, 'trigger' | 'title' | 'severity' | 'triggerAtMs' | 'startMs' | 'endMs' | 'notes'>): Incident {
  if (open !== null && found.atMs <= open.endMs) {
    const renamed = triggerRank[found.trigger] > triggerRank[open.trigger] ? { trigger: found.trigger, title: found.title } : {};
    return {
      ...open,
      ...renamed,
      endMs: Math.max(open.endMs, found.atMs + incidentPostRollMs),
      severity: severityRank[found.severity] > severityRank[open.severity] ? found.severity : open.severity,
      notes: open.notes,
    };
  }
  return {
    ...fresh(),
    trigger: found.trigger,
    title: found.title,
    severity: found.severity,
    notes: '',
    triggerAtMs: found.atMs,
    startMs: Math.max(0, found.atMs - incidentPreRollMs),
    endMs: found.atMs + incidentPostRollMs,
  };
}
