/**
 * Replica state-hash comparison (DESIGN.md: "Replicas compare state hashes at
 * the same applied index; the check itself goes through the log").
 *
 * The leader proposes a state-check entry; every replica hashes its key-value
 * state when it applies that entry, so all hashes describe the same index, and
 * sends (index, hash) to the others. This module is the pure half: it collects
 * the hashes per index and decides, once a majority of voters has reported,
 * which replicas are the minority. No I/O, no clock.
 *
 *   pending ──a voter majority agrees──► agreed ──a later report differs──► minority
 *      │                                                 (named)
 *      └──every voter reported, no hash holds a majority──► no-majority
 */

/** Indexes whose hashes are kept; older checks are dropped (a node that lags that far is caught by the next one). */
export const stateChecksTrackedMax = 16;
/** Reports kept per index: one per member, and a cluster has at most this many. */
export const stateCheckReportersMax = 64;

export type StateCheckVerdict =
  /** Not enough voters have reported to know the majority's hash. */
  | { readonly status: 'pending' }
  | { readonly status: 'agreed'; readonly hash: string }
  /** A voter majority holds `hash`; `minority` are the replicas whose hash differs. */
  | { readonly status: 'minority'; readonly hash: string; readonly majority: readonly string[]; readonly minority: readonly string[] }
  /** Every voter reported and no hash is held by a majority: the cluster cannot tell who is right. */
  | { readonly status: 'no-majority'; readonly groups: readonly (readonly string[])[] };

/**
 * Decides on one index. Only voters count towards the majority; a learner's
 * hash is still compared against the majority's, so a divergent learner is
 * named too. While the voters still missing could make some hash a majority,
 * the answer is `pending`: a split that later arrivals can resolve is not
 * reported as one.
 */
export function compareStateHashes(reports: ReadonlyMap<string, string>, voters: readonly string[]): StateCheckVerdict {
  const voterSet = new Set(voters);
  const majority = Math.floor(voterSet.size / 2) + 1;
  const votersByHash = new Map<string, string[]>();
  let voterReports = 0;
  for (const [node, hash] of reports) {
    if (!voterSet.has(node)) continue;
    voterReports += 1;
    const group = votersByHash.get(hash) ?? [];
    group.push(node);
    votersByHash.set(hash, group);
  }
  if (voterReports < majority) return { status: 'pending' };
  let largest: { hash: string; nodes: string[] } | null = null;
  for (const [hash, nodes] of votersByHash) if (largest === null || nodes.length > largest.nodes.length) largest = { hash, nodes };
  if (largest === null) return { status: 'pending' };
  if (largest.nodes.length < majority) {
    const missing = voterSet.size - voterReports;
    if (largest.nodes.length + missing >= majority) return { status: 'pending' };
    return { status: 'no-majority', groups: [...votersByHash.values()].map((nodes) => [...nodes].sort()) };
  }
  const majorityHash = largest.hash;
  const minority = [...reports].filter(([, hash]) => hash !== majorityHash).map(([node]) => node).sort();
  if (minority.length === 0) return { status: 'agreed', hash: majorityHash };
  return { status: 'minority', hash: majorityHash, majority: [...largest.nodes].sort(), minority };
}

/** The hashes reported per index, bounded to the newest `stateChecksTrackedMax` indexes. */
export class StateHashTally {
  private readonly checks = new Map<number, Map<string, string>>();

  /** Records `node`'s hash at `index`; returns whether it was kept (an index older than every tracked one is not, once full). */
  record(index: number, node: string, hash: string): boolean {
    let reports = this.checks.get(index);
    if (reports === undefined) {
      if (this.checks.size >= stateChecksTrackedMax) {
        const oldest = Math.min(...this.checks.keys());
        if (index < oldest) return false;
        this.checks.delete(oldest);
      }
      reports = new Map();
      this.checks.set(index, reports);
    }
    if (!reports.has(node) && reports.size >= stateCheckReportersMax) return false;
    reports.set(node, hash);
    return true;
  }

  reports(index: number): ReadonlyMap<string, string> {
    return this.checks.get(index) ?? new Map();
  }

  verdict(index: number, voters: readonly string[]): StateCheckVerdict {
    return compareStateHashes(this.reports(index), voters);
  }

  trackedIndexes(): number[] {
    return [...this.checks.keys()].sort((a, b) => a - b);
  }
}
