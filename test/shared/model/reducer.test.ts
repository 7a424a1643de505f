import { describe, expect, it } from 'vitest';
import { reduce } from '../../../src/shared/model';
import { clusterSamples, event, run, sample, status, tick } from './fixtures';

describe('cluster model: leader and epoch', () => {
  it('names the leader that a majority of reachable nodes agree on', () => {
    const model = run(clusterSamples(1_000, { leader: 'n2', epoch: 7 }));
    expect(model.leader).toMatchObject({ nodeId: 'n2', epoch: 7, source: 'majority' });
  });

  it('falls back to a self-reported leader when no majority names one', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1', epoch: 4 })),
      sample(1_000, status('n2', { role: 'candidate', leader: null, epoch: 5 })),
      sample(1_000, status('n3', { role: 'candidate', leader: null, epoch: 5 })),
    ]);
    expect(model.leader).toMatchObject({ nodeId: 'n1', epoch: 4, source: 'self-reported' });
  });

  it('lets the majority of a newer epoch outvote a lone stale leader', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1', epoch: 3 })),
      sample(1_000, status('n2', { role: 'leader', leader: 'n2', epoch: 4 })),
      sample(1_000, status('n3', { role: 'follower', leader: 'n2', epoch: 4 })),
    ]);
    expect(model.leader?.nodeId).toBe('n2');
  });

  it('takes the epoch and its label from the current leader', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1', epoch: 5, epochLabel: '0x500000003' })),
      sample(1_000, status('n2', { leader: 'n1', epoch: 5, epochLabel: '0x500000001' })),
    ]);
    expect([model.epoch, model.epochLabel]).toEqual([5, '0x500000003']);
  });

  it('has no leader and unknown health before any status', () => {
    const model = run([tick(1_000)]);
    expect([model.leader, model.health]).toEqual([null, 'unknown']);
  });
});

describe('cluster model: nodes', () => {
  it('keeps each node\'s latest status, link and last-seen time', () => {
    const model = run([
      { kind: 'link', nodeId: 'n2', endpoint: '127.0.0.1:7402', state: 'connected', atMs: 900 },
      ...clusterSamples(1_000),
      event(1_200, 'n2', { type: 'node:joined', node: 'n2' }),
    ]);
    const node = model.nodes.n2;
    expect(node).toMatchObject({ endpoint: '127.0.0.1:7402', linkState: 'connected', statusAtMs: 1_000, lastSeenAtMs: 1_200, reachability: 'reachable' });
  });

  it('ignores a sample older than the status it already holds', () => {
    const model = run([sample(2_000, status('n2', { lastIndex: 200 })), sample(1_000, status('n2', { lastIndex: 150 }))]);
    expect(model.nodes.n2?.status?.lastIndex).toBe(200);
  });

  it('marks a node whose link is unreachable as unreachable', () => {
    const model = run([...clusterSamples(1_000), { kind: 'link', nodeId: 'n3', endpoint: 'h:1', state: 'unreachable', atMs: 1_100 }]);
    expect(model.nodes.n3?.reachability).toBe('unreachable');
  });

  it('ages a silent node to stale and then unreachable as ticks advance time', () => {
    const atStale = run([...clusterSamples(1_000), sample(5_000, status('n1', { role: 'leader' })), tick(5_000)]);
    expect(atStale.nodes.n3?.reachability).toBe('stale');
    const atUnreachable = reduce(atStale, tick(11_500));
    expect(atUnreachable.nodes.n3?.reachability).toBe('unreachable');
  });

  it('gives a card to a configured voter that never reported', () => {
    const model = run(clusterSamples(1_000, { voters: 3, missing: ['n3'] }));
    expect(model.nodes.n3).toMatchObject({ status: null, reachability: 'unknown' });
  });

  it('ignores a sample from a node of another cluster', () => {
    const model = run([...clusterSamples(1_000), sample(1_100, status('x9', { clusterId: 'other', role: 'leader', leader: 'x9', epoch: 99 }))]);
    expect(model.nodes.x9).toBeUndefined();
  });
});

describe('cluster model: replication lag', () => {
  it('reports each follower\'s lag in entries and milliseconds from the leader\'s followers', () => {
    const model = run(clusterSamples(1_000, { lag: { n2: { lagEntries: 40, lagMs: 300 }, n3: { lagEntries: 0, lagMs: 0 } } }));
    expect(model.followers.map((follower) => [follower.nodeId, follower.lagEntries, follower.lagMs])).toEqual([
      ['n2', 40, 300],
      ['n3', 0, 0],
    ]);
  });

  it('records a lag point per follower when the leader reports', () => {
    const model = run([...clusterSamples(1_000, { lag: { n2: { lagEntries: 5 } } }), ...clusterSamples(2_000, { lag: { n2: { lagEntries: 9 } } })]);
    expect(model.lagHistory.n2?.map((point) => point.lagEntries)).toEqual([5, 9]);
  });
});

describe('cluster model: leaderless time and failovers', () => {
  it('starts the leaderless clock when the leader disappears and lets ticks advance it', () => {
    const model = run([
      ...clusterSamples(1_000),
      sample(2_000, status('n2', { role: 'candidate', leader: null, epoch: 4 })),
      sample(2_000, status('n3', { role: 'candidate', leader: null, epoch: 4 })),
      sample(2_000, status('n1', { role: 'offline', leader: null })),
      tick(4_500),
    ]);
    expect([model.leaderlessSinceMs, model.nowMs, model.health]).toEqual([2_000, 4_500, 'no-leader']);
  });

  it('records a failover with from, to, epoch and the leaderless gap', () => {
    const model = run([
      ...clusterSamples(1_000),
      sample(2_000, status('n1', { role: 'offline', leader: null })),
      sample(2_000, status('n2', { role: 'candidate', leader: null, epoch: 4 })),
      ...clusterSamples(2_700, { leader: 'n2', epoch: 4, missing: ['n1'] }),
    ]);
    expect(model.failovers).toEqual([
      expect.objectContaining({ from: 'n1', to: 'n2', fromEpoch: 3, epoch: 4, atMs: 2_700, durationMs: 700 }),
    ]);
  });

  it('calls a leader change after leader:lost a failure', () => {
    const model = run([
      ...clusterSamples(1_000),
      event(1_500, 'n1', { type: 'leader:lost', epoch: 3, leader: 'n1', reason: 'lost quorum' }),
      ...clusterSamples(2_000, { leader: 'n2', epoch: 4 }),
    ]);
    expect(model.failovers[0]).toMatchObject({ cause: 'failure', note: 'n1 lost leadership: lost quorum' });
  });

  it('calls a leader change after an election timeout a failure', () => {
    const model = run([
      ...clusterSamples(1_000),
      event(1_500, 'n2', { type: 'election:started', epoch: 4, candidate: 'n2', preVote: false }),
      ...clusterSamples(2_000, { leader: 'n2', epoch: 4 }),
    ]);
    expect(model.failovers[0]?.cause).toBe('failure');
  });

  it('calls a leader change with no evidence of its cause unknown', () => {
    const model = run([...clusterSamples(1_000), ...clusterSamples(2_000, { leader: 'n2', epoch: 4 })]);
    expect(model.failovers[0]).toMatchObject({ cause: 'unknown', durationMs: 0 });
  });

  it('does not count the same leader in the same epoch, seen again after a gap, as a failover', () => {
    const model = run([
      ...clusterSamples(1_000),
      ...['n1', 'n2', 'n3'].map((nodeId) => ({ kind: 'link' as const, nodeId, endpoint: nodeId, state: 'unreachable' as const, atMs: 1_500 })),
      ...['n1', 'n2', 'n3'].map((nodeId) => ({ kind: 'link' as const, nodeId, endpoint: nodeId, state: 'connected' as const, atMs: 2_000 })),
      ...clusterSamples(2_000),
    ]);
    expect([model.failovers, model.leader?.nodeId, model.timeline.some((entry) => entry.text === 'n1 seen leading term 3 again')]).toEqual([[], 'n1', true]);
  });

  it('calls a transfer the agents report, but this app did not start, a planned transfer without muting it', () => {
    const model = run([
      ...clusterSamples(1_000),
      event(1_200, 'n1', { type: 'transfer:requested', epoch: 3, from: 'n1', to: 'n3' }),
      ...clusterSamples(1_600, { leader: 'n3', epoch: 4 }),
    ]);
    expect(model.failovers[0]).toMatchObject({ cause: 'planned transfer', operatorInitiated: false });
  });

  it('calls a leader change during a drill the agents report a drill', () => {
    const model = run([
      ...clusterSamples(1_000),
      event(1_200, 'n1', { type: 'drill:started', drill: 'pause', detail: '' }),
      ...clusterSamples(3_000, { leader: 'n2', epoch: 4 }),
    ]);
    expect(model.failovers[0]).toMatchObject({ cause: 'drill', note: 'during drill pause on n1' });
  });
});

describe('cluster model: health', () => {
  it('is healthy when a leader leads every voter at full fault tolerance', () => {
    expect(run(clusterSamples(1_000)).health).toBe('healthy');
  });

  it('is degraded when a voter is down', () => {
    const model = run([...clusterSamples(1_000, { voters: 5, missing: ['n5'] })]);
    expect(model.health).toBe('degraded');
  });

  it('is split-brain when two nodes lead the same epoch', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1' })),
      sample(1_000, status('n2', { role: 'leader', leader: 'n2' })),
      sample(1_000, status('n3', { leader: 'n1' })),
    ]);
    expect(model.health).toBe('split-brain');
  });
});

describe('cluster model: timeline', () => {
  it('shows an event reported by several nodes once', () => {
    const elected = { type: 'leader:elected', epoch: 4, leader: 'n2', previousLeader: 'n1', leaderlessTicks: 3, leaderlessMs: 300 } as const;
    const model = run([...clusterSamples(1_000), event(1_500, 'n2', elected), event(1_510, 'n3', elected), event(1_500, 'n2', elected)]);
    expect(model.timeline.filter((entry) => entry.kind === 'election')).toHaveLength(1);
  });

  it('drops an event delivered twice', () => {
    const lost = event(1_500, 'n3', { type: 'node:lost', node: 'n3', reason: 'connection reset' });
    const model = run([...clusterSamples(1_000), lost, lost]);
    expect(model.timeline.filter((entry) => entry.kind === 'node')).toHaveLength(1);
  });

  it('does not put pre-votes on the timeline', () => {
    const model = run([...clusterSamples(1_000), event(1_500, 'n2', { type: 'election:started', epoch: 4, candidate: 'n2', preVote: true })]);
    expect(model.timeline.some((entry) => entry.kind === 'election')).toBe(false);
  });

  it('puts a failover on the timeline with its cause', () => {
    const model = run([...clusterSamples(1_000), ...clusterSamples(2_000, { leader: 'n2', epoch: 4 })]);
    expect(model.timeline.find((entry) => entry.kind === 'failover')?.text).toBe('Leader changed n1 → n2 in term 4 (no cause reported)');
  });

  it('numbers timeline entries in order', () => {
    const model = run([...clusterSamples(1_000), ...clusterSamples(2_000, { leader: 'n2', epoch: 4 })]);
    expect(model.timeline.map((entry) => entry.sequence)).toEqual(model.timeline.map((_, index) => index));
  });
});
