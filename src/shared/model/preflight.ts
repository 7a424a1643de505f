import type { ClusterModel, PreflightCheck } from './types';

/** How far a transfer target may trail the leader and still be called caught up. */
export interface PreflightLimits {
  lagEntriesMax: number;
  lagMsMax: number;
}

export const preflightLimitsDefault: PreflightLimits = { lagEntriesMax: 100, lagMsMax: 1_000 };

/**
 * The pre-flight checks of a manual failover, from the model alone (pure, so
 * the dialog, the hub and the tests agree): the target must be reachable, a
 * caught-up voter other than the leader, the cluster must have a healthy
 * quorum, and the move must not cost fault tolerance.
 */
export function preflightChecks(model: ClusterModel, target: string, limits: PreflightLimits = preflightLimitsDefault): PreflightCheck[] {
  const leader = model.leader;
  const node = model.nodes[target];
  const follower = model.followers.find((candidate) => candidate.nodeId === target);
  const tolerance = model.faultTolerance;
  const checks: PreflightCheck[] = [];

  checks.push(
    leader === null
      ? { check: 'leader', ok: false, detail: 'the cluster has no leader: there is nothing to move' }
      : leader.nodeId === target
        ? { check: 'leader', ok: false, detail: `${target} already leads` }
        : { check: 'leader', ok: true, detail: `${leader.nodeId} leads in ${leader.epochLabel}` },
  );

  const reachable = node !== undefined && node.reachability === 'reachable';
  checks.push({
    check: 'target reachable',
    ok: reachable,
    detail: node === undefined ? `${target} is not a known node` : reachable ? `${target} is answering` : `${target} is ${node.reachability}`,
  });

  if (follower === undefined) {
    checks.push({ check: 'target is a voter', ok: false, detail: `the leader does not replicate to ${target}` });
  } else if (!follower.voter) {
    checks.push({ check: 'target is a voter', ok: false, detail: `${target} is a learner: promote it first` });
  } else {
    checks.push({ check: 'target is a voter', ok: true, detail: `${target} votes` });
  }

  if (follower !== undefined) {
    const caughtUp = follower.lagEntries <= limits.lagEntriesMax && follower.lagMs <= limits.lagMsMax;
    checks.push({
      check: 'target caught up',
      ok: caughtUp,
      detail: caughtUp
        ? `${follower.lagEntries} entries behind (limit ${limits.lagEntriesMax})`
        : `${follower.lagEntries} entries and ${Math.round(follower.lagMs)} ms behind (limits ${limits.lagEntriesMax} entries, ${limits.lagMsMax} ms)`,
    });
  }

  const quorumHealthy = tolerance.tolerable !== null && tolerance.healthy >= tolerance.quorum;
  checks.push({
    check: 'healthy quorum',
    ok: quorumHealthy,
    detail: `${tolerance.healthy} of ${tolerance.voters} voters healthy; a quorum is ${tolerance.quorum}`,
  });

  // The old leader stays a voter, so the move keeps the tolerance only if the target itself is healthy.
  const after = tolerance.tolerable === null ? null : reachable ? tolerance.tolerable : tolerance.tolerable - 1;
  checks.push({
    check: 'fault tolerance after the move',
    ok: after !== null && after >= 0 && after >= Math.min(1, tolerance.tolerableMax),
    detail: after === null ? 'unknown without a leader' : `the cluster can then lose ${after} more node${after === 1 ? '' : 's'}`,
  });

  const transferring = Object.values(model.nodes).find((view) => view.status?.transferringTo != null);
  checks.push({
    check: 'no transfer in progress',
    ok: transferring === undefined,
    detail: transferring === undefined ? 'none' : `${transferring.nodeId} is already handing over to ${transferring.status?.transferringTo}`,
  });
  return checks;
}
