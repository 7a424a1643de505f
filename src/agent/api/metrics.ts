import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeStatus } from '../../shared/protocol';

/**
 * Prometheus metrics of one node. A registry per node (no global default
 * registry) so that tests can run several nodes in one process.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly leaderChanges: Counter;
  private readonly proposalsCommitted: Counter;
  private readonly proposalsFailed: Counter<'reason'>;
  private readonly fsyncDuration: Histogram;

  constructor(labels: { node: string; cluster: string }, status: () => NodeStatus) {
    this.registry.setDefaultLabels(labels);
    const gauge = (name: string, help: string, read: (status: NodeStatus) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read(status()));
        },
      });
    gauge('quorumscope_has_leader', '1 if this node knows a leader, else 0', (s) => (s.leader === null ? 0 : 1));
    gauge('quorumscope_is_leader', '1 if this node is the leader, else 0', (s) => (s.role === 'leader' ? 1 : 0));
    gauge('quorumscope_epoch', 'Current epoch (Raft term)', (s) => s.epoch);
    gauge('quorumscope_last_index', 'Index of the last log entry', (s) => s.lastIndex);
    gauge('quorumscope_commit_index', 'Highest index known committed', (s) => s.commitIndex);
    gauge('quorumscope_applied_index', 'Highest index applied to the key-value store', (s) => s.appliedIndex);
    const followerGauge = (name: string, help: string, read: (lagEntries: number, lagMs: number) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['follower'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const follower of status().followers) this.set({ follower: follower.nodeId }, read(follower.lagEntries, follower.lagMs));
        },
      });
    followerGauge('quorumscope_follower_lag_entries', 'Entries the follower has not acknowledged (leader only)', (entries) => entries);
    followerGauge('quorumscope_follower_lag_seconds', 'Age of the oldest entry the follower has not acknowledged (leader only)', (_e, ms) => ms / 1000);
    this.leaderChanges = new Counter({ name: 'quorumscope_leader_changes_total', help: 'Leader changes seen by this node', registers: [this.registry] });
    this.proposalsCommitted = new Counter({ name: 'quorumscope_proposals_committed_total', help: 'Client writes committed and applied', registers: [this.registry] });
    this.proposalsFailed = new Counter({
      name: 'quorumscope_proposals_failed_total',
      help: 'Client writes that failed, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.fsyncDuration = new Histogram({
      name: 'quorumscope_fsync_duration_seconds',
      help: 'Duration of WAL fsyncs',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry],
    });
  }

  leaderChanged(): void {
    this.leaderChanges.inc();
  }

  proposalCommitted(): void {
    this.proposalsCommitted.inc();
  }

  proposalFailed(reason: string): void {
    this.proposalsFailed.inc({ reason });
  }

  fsyncObserved(durationMs: number): void {
    this.fsyncDuration.observe(durationMs / 1000);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
