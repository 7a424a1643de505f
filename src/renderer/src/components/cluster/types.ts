import type { ClusterOverviewFacts } from '../../../../shared/model';

/** Where a manual failover stands, as the caller tells the failover dialog. */
export type FailoverPhase = 'select' | 'in-progress' | 'succeeded' | 'failed';

/** One row of the cluster overview: a connected profile and, once agents report, its overview facts. */
export interface ClusterOverviewEntry {
  profileId: string;
  name: string;
  summary: ClusterOverviewFacts | null;
}
