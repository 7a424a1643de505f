import { describe, expect, it } from 'vitest';
import { summarizeForRenderer } from '../../../src/shared/model';
import { clusterSamples, run } from './fixtures';

describe('summary for the renderer', () => {
  const lagging = clusterSamples(1_000, { voters: 5, missing: ['n5'], lag: { n2: { lagEntries: 5_000 } } });

  it('lists the most severe alert first', () => {
    const critical = summarizeForRenderer(run(clusterSamples(1_000, { voters: 3, missing: ['n3'], lag: { n2: { lagEntries: 5_000 } } })));
    expect(critical.alerts.map((alert) => alert.severity)).toEqual(['critical', 'warning']);
    expect(critical.alerts[0]?.id).toBe('fault-tolerance');
  });

  it('marks muted alerts and leaves them out of the attention count', () => {
    const model = run([...lagging, { kind: 'mute', alertId: 'lag:n2', durationMs: 60_000, atMs: 1_100 }]);
    const summary = summarizeForRenderer(model);
    expect(summary.alerts.find((alert) => alert.id === 'lag:n2')?.muted).toBe(true);
    expect([summary.activeAlertCount, summary.attentionAlertCount]).toEqual([2, 1]);
  });

  it('gives every node a card with its role, and marks the leader', () => {
    const summary = summarizeForRenderer(run(lagging));
    expect(summary.nodes.map((node) => [node.nodeId, node.role, node.isLeader])).toEqual([
      ['n1', 'leader', true],
      ['n2', 'follower', false],
      ['n3', 'follower', false],
      ['n4', 'follower', false],
      ['n5', 'unknown', false],
    ]);
  });

  it('attaches the leader\'s view of replication to each follower card', () => {
    const summary = summarizeForRenderer(run(lagging));
    expect(summary.nodes.find((node) => node.nodeId === 'n2')?.replication).toMatchObject({ lagEntries: 5_000, state: 'replicate' });
  });

  it('uses the engine\'s word for the epoch', () => {
    expect(summarizeForRenderer(run(lagging)).epochNoun).toBe('term');
  });
});
