/**
 * Thresholds and bounds of the cluster model. The thresholds are the operator's
 * to tune (they live in the initial model, so a recording replays with the
 * thresholds it was recorded with); the bounds keep every buffer finite.
 */
export interface ModelConfig {
  /** A cluster without a leader for longer than this raises a warning. */
  leaderlessWarningAfterMs: number;
  /** ...and a critical alert after this long. */
  leaderlessCriticalAfterMs: number;
  /** A follower further behind than this many entries raises a lag warning. */
  followerLagWarningEntries: number;
  /** A follower whose oldest unacknowledged entry is older than this raises a lag warning. */
  followerLagWarningMs: number;
  /** A node with no status for longer than this is stale: shown, but not counted as healthy. */
  nodeStaleAfterMs: number;
  /** A node with no status for longer than this is unreachable, whatever its link says. */
  nodeUnreachableAfterMs: number;
  /**
   * A voter the leader heard from within this long counts as healthy even if the
   * hub cannot reach it: the cluster's own view beats the hub's network path.
   */
  followerContactAgeMsMax: number;
  /** How long an operator's transfer or drill explains (and mutes) the leader changes it causes. */
  operatorGraceMs: number;
  /** How long the leader-changed alert stays up after a failover. */
  leaderChangedAlertHoldMs: number;
  /** How long the informational repaired alert stays up before it clears itself. */
  repairedAlertHoldMs: number;
  /** The lag charts show this much history. */
  lagHistoryWindowMs: number;
  /** One lag point per follower per interval; bursts inside an interval keep their peak. */
  lagHistoryIntervalMs: number;
  timelineEntriesMax: number;
  failoversMax: number;
  /** Cleared alerts kept for the alerts panel and the post-mortem. */
  alertHistoryMax: number;
}

export const defaultModelConfig: Readonly<ModelConfig> = Object.freeze({
  leaderlessWarningAfterMs: 1_000,
  leaderlessCriticalAfterMs: 10_000,
  followerLagWarningEntries: 1_000,
  followerLagWarningMs: 2_000,
  nodeStaleAfterMs: 3_000,
  nodeUnreachableAfterMs: 10_000,
  followerContactAgeMsMax: 2_000,
  operatorGraceMs: 20_000,
  leaderChangedAlertHoldMs: 60_000,
  repairedAlertHoldMs: 30_000,
  lagHistoryWindowMs: 5 * 60_000,
  lagHistoryIntervalMs: 500,
  timelineEntriesMax: 500,
  failoversMax: 100,
  alertHistoryMax: 200,
});

/** The schema allows at most 64 voters and 64 learners per status. */
export const nodesMax = 128;
/** Standing mutes; an operator does not mute more alerts than a cluster can raise. */
export const mutesMax = 256;
/** Operator operations waiting to explain a leader change. */
export const operationsMax = 16;
/** Event ids and election keys remembered to drop duplicates (an agent may resend after a reconnect). */
export const recentKeysMax = 256;
/** Lag series kept, one per follower of the current or a recent leader. */
export const lagSeriesMax = 64;

/** Points one lag series holds at most: the window divided into intervals, plus the open one. */
export function lagHistoryPointsMax(config: ModelConfig): number {
  return Math.ceil(config.lagHistoryWindowMs / config.lagHistoryIntervalMs) + 1;
}

/**
 * Fills in defaults and checks the configuration. A nonsensical configuration
 * is a programmer error, so it throws instead of returning an error value.
 */
export function resolveModelConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  const config: ModelConfig = { ...defaultModelConfig, ...overrides };
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isFinite(value) || value < 0) throw new Error(`model config ${name} must be a finite non-negative number, got ${String(value)}`);
  }
  if (config.leaderlessCriticalAfterMs < config.leaderlessWarningAfterMs) {
    throw new Error('model config leaderlessCriticalAfterMs must not be shorter than leaderlessWarningAfterMs');
  }
  if (config.nodeUnreachableAfterMs < config.nodeStaleAfterMs) {
    throw new Error('model config nodeUnreachableAfterMs must not be shorter than nodeStaleAfterMs');
  }
  if (config.lagHistoryIntervalMs <= 0) throw new Error('model config lagHistoryIntervalMs must be positive');
  for (const bound of ['timelineEntriesMax', 'failoversMax', 'alertHistoryMax'] as const) {
    if (!Number.isInteger(config[bound]) || config[bound] < 1) throw new Error(`model config ${bound} must be a positive integer`);
  }
  return config;
}
