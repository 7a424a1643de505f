import { describe, expect, it } from 'vitest';
import { preflightChecks } from '../../../src/shared/model';
import { clusterSamples, run, status, sample } from './fixtures';

const failedChecks = (checks: ReturnType<typeof preflightChecks>) => checks.filter((check) => !check.ok).map((check) => check.check);

describe('failover pre-flight checks', () => {
  it('pass for a caught-up, reachable voter in a healthy cluster', () => {
    const model = run(clusterSamples(1_000, { voters: 3 }));
    const checks = preflightChecks(model, 'n2');
    expect(failedChecks(checks)).toEqual([]);
    expect(checks.map((check) => check.check)).toEqual([
      'leader',
      'target reachable',
      'target is a voter',
      'target caught up',
      'healthy quorum',
      'fault tolerance after the move',
      'no transfer in progress',
    ]);
  });

  it('refuse the current leader as a target', () => {
    const model = run(clusterSamples(1_000, { voters: 3 }));
    expect(failedChecks(preflightChecks(model, 'n1'))).toContain('leader');
  });

  it('refuse a lagging target and say how far behind it is', () => {
    const model = run(clusterSamples(1_000, { voters: 3, lag: { n2: { lagEntries: 5_000, lagMs: 4_000 } } }));
    const checks = preflightChecks(model, 'n2');
    expect(failedChecks(checks)).toEqual(['target caught up']);
    expect(checks.find((check) => check.check === 'target caught up')?.detail).toContain('5000 entries');
  });

  it('refuse an unknown node', () => {
    const model = run(clusterSamples(1_000, { voters: 3 }));
    expect(failedChecks(preflightChecks(model, 'n9'))).toEqual(expect.arrayContaining(['target reachable', 'target is a voter']));
  });

  it('refuse a learner until it is promoted', () => {
    const model = run(clusterSamples(1_000, { voters: 3, lag: { n3: { voter: false } } }));
    expect(failedChecks(preflightChecks(model, 'n3'))).toContain('target is a voter');
  });

  it('refuse while another transfer is in flight', () => {
    const model = run([...clusterSamples(1_000, { voters: 3 }), sample(1_050, status('n1', { role: 'leader', leader: 'n1', transferringTo: 'n3', voters: ['n1', 'n2', 'n3'] }))]);
    expect(failedChecks(preflightChecks(model, 'n2'))).toContain('no transfer in progress');
  });

  it('refuse without a leader', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'candidate', leader: null })),
      sample(1_000, status('n2', { role: 'follower', leader: null })),
      sample(1_000, status('n3', { role: 'follower', leader: null })),
    ]);
    expect(failedChecks(preflightChecks(model, 'n2'))).toEqual(expect.arrayContaining(['leader', 'healthy quorum']));
  });
});
