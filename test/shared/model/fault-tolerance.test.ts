import { describe, expect, it } from 'vitest';
import { clusterSamples, progress, run, sample, status } from './fixtures';

function tolerance(voters: number, missing: string[]) {
  return run(clusterSamples(1_000, { voters, missing })).faultTolerance;
}

describe('fault tolerance: can lose N more nodes', () => {
  it('three healthy voters can lose one', () => {
    expect(tolerance(3, [])).toEqual({ voters: 3, quorum: 2, healthy: 3, tolerable: 1, tolerableMax: 1 });
  });

  it('three voters with one down can lose none', () => {
    expect(tolerance(3, ['n3']).tolerable).toBe(0);
  });

  it('three voters with two down have lost their quorum', () => {
    const model = run([...clusterSamples(1_000, { voters: 3, missing: ['n2', 'n3'] })]);
    expect(model.faultTolerance).toMatchObject({ healthy: 1, tolerable: -1 });
  });

  it('five healthy voters can lose two', () => {
    expect(tolerance(5, [])).toEqual({ voters: 5, quorum: 3, healthy: 5, tolerable: 2, tolerableMax: 2 });
  });

  it('five voters with one down can lose one', () => {
    expect(tolerance(5, ['n4']).tolerable).toBe(1);
  });

  it('five voters with two down can lose none', () => {
    expect(tolerance(5, ['n4', 'n5']).tolerable).toBe(0);
  });

  it('is unknown without a leader', () => {
    const model = run([sample(1_000, status('n1', { role: 'candidate', leader: null })), sample(1_000, status('n2', { role: 'candidate', leader: null }))]);
    expect(model.faultTolerance.tolerable).toBeNull();
  });

  it('does not count a voter that follows an older epoch', () => {
    const model = run([
      ...clusterSamples(1_000, { epoch: 5 }),
      sample(1_100, status('n1', { role: 'leader', leader: 'n1', epoch: 5, followers: [progress('n2'), progress('n3', { lastContactMs: null })] })),
      sample(1_100, status('n3', { epoch: 4, leader: 'n9' })),
    ]);
    expect(model.faultTolerance.healthy).toBe(2);
  });

  it('counts a voter the hub cannot reach when the leader heard from it recently', () => {
    const model = run([
      ...clusterSamples(1_000),
      { kind: 'link', nodeId: 'n3', endpoint: 'h:3', state: 'unreachable', atMs: 1_100 },
      sample(1_200, status('n1', { role: 'leader', leader: 'n1', followers: [progress('n2'), progress('n3', { lastContactMs: 100 })] })),
    ]);
    expect(model.faultTolerance.healthy).toBe(3);
  });

  it('does not count a voter the leader has not heard from lately', () => {
    const model = run([
      ...clusterSamples(1_000),
      { kind: 'link', nodeId: 'n3', endpoint: 'h:3', state: 'unreachable', atMs: 1_100 },
      sample(1_200, status('n1', { role: 'leader', leader: 'n1', followers: [progress('n2'), progress('n3', { lastContactMs: 5_000 })] })),
    ]);
    expect(model.faultTolerance.healthy).toBe(2);
  });

  it('does not count a voter that refuses to serve', () => {
    const integrity = { bytesScrubbed: 0, lastScrubAtMs: null, scrubInProgress: false, corruptionsFound: 1, corruptionsRepaired: 0, parity: 'none' as const, serving: false, reason: null };
    const model = run([...clusterSamples(1_000), sample(1_100, status('n2', { integrity }))]);
    expect(model.faultTolerance.healthy).toBe(2);
  });
});
