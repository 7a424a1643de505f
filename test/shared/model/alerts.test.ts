import { describe, expect, it } from 'vitest';
import { reduce, type ModelMessage } from '../../../src/shared/model';
import { alertById, alertByRule, alertIds, clusterSamples, event, run, sample, status, tick } from './fixtures';

/** A 3-node cluster led by n1 at 1 s whose leader then drops out at 2 s, leaving two candidates. */
const leaderLost: ModelMessage[] = [
  ...clusterSamples(1_000),
  sample(2_000, status('n1', { role: 'offline', leader: null })),
  sample(2_000, status('n2', { role: 'candidate', leader: null, epoch: 4 })),
  sample(2_000, status('n3', { role: 'candidate', leader: null, epoch: 4 })),
];

/** Fresh candidate samples at `atMs`, so the leaderless cluster stays in sight of the hub. */
function stillLeaderless(atMs: number): ModelMessage[] {
  return [sample(atMs, status('n2', { role: 'candidate', leader: null, epoch: 5 })), sample(atMs, status('n3', { role: 'candidate', leader: null, epoch: 5 }))];
}

describe('alert: no leader', () => {
  it('stays quiet for the first second without a leader', () => {
    const model = run([...leaderLost, tick(3_000)]);
    expect(alertById(model, 'no-leader')).toBeUndefined();
  });

  it('raises a warning after more than a second without a leader', () => {
    const model = run([...leaderLost, tick(3_001)]);
    expect(alertById(model, 'no-leader')).toMatchObject({ severity: 'warning', raisedAtMs: 3_001 });
  });

  it('escalates to critical after more than ten seconds without a leader', () => {
    const model = run([...leaderLost, tick(3_001), ...stillLeaderless(12_000), tick(12_001)]);
    expect(alertById(model, 'no-leader')?.severity).toBe('critical');
  });

  it('clears once a new leader is elected', () => {
    const model = run([...leaderLost, tick(3_500), ...clusterSamples(4_000, { leader: 'n2', epoch: 4, missing: ['n1'] })]);
    expect(alertById(model, 'no-leader')).toBeUndefined();
    expect(model.alertHistory.find((alert) => alert.id === 'no-leader')?.clearedAtMs).toBe(4_000);
  });

  it('honours a configured warning threshold', () => {
    const model = run([...leaderLost, tick(2_600)], { leaderlessWarningAfterMs: 500 });
    expect(alertById(model, 'no-leader')?.severity).toBe('warning');
  });
});

describe('alert: split brain', () => {
  it('is critical when two nodes each claim leadership of the same epoch', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1', epoch: 6 })),
      sample(1_000, status('n2', { role: 'leader', leader: 'n2', epoch: 6 })),
    ]);
    expect(alertById(model, 'split-brain')).toMatchObject({ severity: 'critical' });
    expect(model.splitBrain).toEqual({ epoch: 6, leaders: ['n1', 'n2'] });
  });

  it('is critical when followers name two different leaders for the same epoch', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'follower', leader: 'n2', epoch: 6 })),
      sample(1_000, status('n3', { role: 'follower', leader: 'n4', epoch: 6 })),
    ]);
    expect(alertById(model, 'split-brain')?.severity).toBe('critical');
  });

  it('is critical when two nodes are in the leader role for the same epoch without naming a leader', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: null, epoch: 6 })),
      sample(1_000, status('n2', { role: 'leader', leader: null, epoch: 6 })),
    ]);
    expect(alertById(model, 'split-brain')?.severity).toBe('critical');
  });

  it('is not raised for an old leader of an older epoch', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1', epoch: 3 })),
      sample(1_000, status('n2', { role: 'leader', leader: 'n2', epoch: 4 })),
      sample(1_000, status('n3', { leader: 'n2', epoch: 4 })),
    ]);
    expect(alertById(model, 'split-brain')).toBeUndefined();
  });

  it('clears when only one leader is left in the epoch', () => {
    const model = run([
      sample(1_000, status('n1', { role: 'leader', leader: 'n1' })),
      sample(1_000, status('n2', { role: 'leader', leader: 'n2' })),
      sample(1_500, status('n2', { role: 'follower', leader: 'n1' })),
    ]);
    expect(alertById(model, 'split-brain')).toBeUndefined();
  });
});

describe('alert: follower lag', () => {
  it('warns when a follower trails by more than the entry limit', () => {
    const model = run(clusterSamples(1_000, { lag: { n2: { lagEntries: 1_001, lagMs: 10 } } }));
    expect(alertById(model, 'lag:n2')).toMatchObject({ severity: 'warning', nodeId: 'n2' });
  });

  it('warns when a follower\'s oldest unacknowledged entry is older than the time limit', () => {
    const model = run(clusterSamples(1_000, { lag: { n3: { lagEntries: 1, lagMs: 2_001 } } }));
    expect(alertIds(model)).toEqual(['lag:n3']);
  });

  it('does not warn at the limits themselves', () => {
    const model = run(clusterSamples(1_000, { lag: { n2: { lagEntries: 1_000, lagMs: 2_000 } } }));
    expect(alertIds(model)).toEqual([]);
  });

  it('uses the configured limits', () => {
    const model = run(clusterSamples(1_000, { lag: { n2: { lagEntries: 60 } } }), { followerLagWarningEntries: 50 });
    expect(alertIds(model)).toEqual(['lag:n2']);
  });

  it('only informs about a lagging learner', () => {
    const model = run(clusterSamples(1_000, { lag: { n2: { lagEntries: 5_000, voter: false } } }));
    expect(alertById(model, 'lag:n2')?.severity).toBe('info');
  });

  it('clears when the follower catches up', () => {
    const model = run([...clusterSamples(1_000, { lag: { n2: { lagEntries: 5_000 } } }), ...clusterSamples(1_500)]);
    expect(alertIds(model)).toEqual([]);
  });
});

describe('alert: node unreachable', () => {
  it('warns when a node\'s link becomes unreachable', () => {
    const model = run([...clusterSamples(1_000), { kind: 'link', nodeId: 'n2', endpoint: 'h:2', state: 'unreachable', atMs: 1_200 }]);
    expect(alertById(model, 'unreachable:n2')?.severity).toBe('warning');
  });

  it('clears when the link is connected again', () => {
    const model = run([
      ...clusterSamples(1_000),
      { kind: 'link', nodeId: 'n2', endpoint: 'h:2', state: 'unreachable', atMs: 1_200 },
      { kind: 'link', nodeId: 'n2', endpoint: 'h:2', state: 'connected', atMs: 1_300 },
    ]);
    expect(alertById(model, 'unreachable:n2')).toBeUndefined();
  });

  it('warns about a node that has been silent past the unreachable limit', () => {
    const model = run([...clusterSamples(1_000, { voters: 5 }), ...clusterSamples(11_500, { voters: 5, missing: ['n4'] })]);
    expect(alertById(model, 'unreachable:n4')).toBeDefined();
  });
});

describe('alert: corruption', () => {
  const detected = event(1_500, 'n2', {
    type: 'corruption:detected',
    kind: 'corruption',
    file: 'wal/000004.seg',
    offset: 4096,
    index: 77,
    detectedBy: 'scrub',
    detail: 'crc mismatch',
  });
  const repaired = event(2_000, 'n2', { type: 'corruption:repaired', file: 'wal/000004.seg', index: 77, repairedFrom: 'peer', durationMs: 120, detail: 'fetched from n1' });

  it('is critical when corruption is detected', () => {
    const model = run([...clusterSamples(1_000), detected]);
    expect(alertById(model, 'corruption:n2')).toMatchObject({ severity: 'critical', nodeId: 'n2' });
  });

  it('is only a warning for a torn tail', () => {
    const torn = event(1_500, 'n2', { type: 'corruption:detected', kind: 'torn-tail', file: null, offset: null, index: null, detectedBy: 'recovery', detail: 'short record' });
    const model = run([...clusterSamples(1_000), torn]);
    expect(alertById(model, 'corruption:n2')?.severity).toBe('warning');
  });

  it('clears the corruption alert and raises an informational one when repaired', () => {
    const model = run([...clusterSamples(1_000), detected, repaired]);
    expect(alertIds(model)).toEqual(['repaired:n2']);
    expect(alertById(model, 'repaired:n2')?.severity).toBe('info');
  });

  it('keeps the corruption alert while another finding on the node is unrepaired', () => {
    const second = event(1_600, 'n2', { type: 'corruption:detected', kind: 'misdirected', file: null, offset: null, index: 78, detectedBy: 'read', detail: 'wrong index' });
    const model = run([...clusterSamples(1_000), detected, second, repaired]);
    expect(alertIds(model)).toEqual(['corruption:n2', 'repaired:n2']);
  });

  it('clears the repaired alert by itself after its hold time', () => {
    const model = run([...clusterSamples(1_000), detected, repaired, ...clusterSamples(32_000)]);
    expect(alertIds(model)).toEqual([]);
  });

  it('is critical when a node refuses to serve data it cannot verify', () => {
    const integrity = { bytesScrubbed: 0, lastScrubAtMs: null, scrubInProgress: false, corruptionsFound: 1, corruptionsRepaired: 0, parity: 'degraded' as const, serving: false, reason: 'entry 77 unreadable' };
    const model = run([...clusterSamples(1_000), sample(1_100, status('n3', { integrity }))]);
    expect(alertById(model, 'not-serving:n3')).toMatchObject({ severity: 'critical' });
  });
});

describe('alert: fault tolerance', () => {
  it('is silent at full fault tolerance', () => {
    expect(alertIds(run(clusterSamples(1_000, { voters: 5 })))).toEqual([]);
  });

  it('warns when five voters can lose only one more', () => {
    const model = run(clusterSamples(1_000, { voters: 5, missing: ['n5'] }));
    expect(alertById(model, 'fault-tolerance')).toMatchObject({ severity: 'warning', title: 'Can lose only 1 more node' });
  });

  it('is critical when three voters cannot lose another', () => {
    const model = run(clusterSamples(1_000, { voters: 3, missing: ['n3'] }));
    expect(alertById(model, 'fault-tolerance')).toMatchObject({ severity: 'critical', title: 'Cannot lose another node' });
  });

  it('is not raised for a single-voter cluster, whose maximum is zero', () => {
    const model = run(clusterSamples(1_000, { voters: 1 }));
    expect(alertById(model, 'fault-tolerance')).toBeUndefined();
  });
});

describe('alert: leader changed', () => {
  it('warns about an unexplained leader change', () => {
    const model = run([...clusterSamples(1_000), ...clusterSamples(2_000, { leader: 'n2', epoch: 4 })]);
    expect(alertByRule(model, 'leader-changed')).toMatchObject({ severity: 'warning', title: 'Leader changed: n1 → n2' });
  });

  it('clears after its hold time', () => {
    const model = run([...clusterSamples(1_000), ...clusterSamples(2_000, { leader: 'n2', epoch: 4 }), ...clusterSamples(62_000, { leader: 'n2', epoch: 4 })]);
    expect(alertByRule(model, 'leader-changed')).toBeUndefined();
  });
});

describe('alert transitions on the timeline', () => {
  it('puts a raised alert on the timeline with its severity', () => {
    const model = run([...leaderLost, tick(3_001)]);
    expect(model.timeline.at(-1)).toMatchObject({ kind: 'alert', severity: 'warning', text: 'Raised: No leader', atMs: 3_001 });
  });

  it('puts a cleared alert on the timeline', () => {
    const model = run([...clusterSamples(1_000, { lag: { n2: { lagEntries: 5_000 } } }), ...clusterSamples(1_500)]);
    expect(model.timeline.at(-1)).toMatchObject({ kind: 'alert', text: 'Cleared: n2 is lagging', atMs: 1_500 });
  });

  it('puts an escalation on the timeline', () => {
    const model = run([...leaderLost, tick(3_001), ...stillLeaderless(12_000), tick(12_001)]);
    expect(model.timeline.some((entry) => entry.text === 'Escalated to critical: No leader')).toBe(true);
  });
});

describe('acknowledging and muting', () => {
  const lagging = clusterSamples(1_000, { lag: { n2: { lagEntries: 5_000 } } });

  it('marks an acknowledged alert', () => {
    const model = run([...lagging, { kind: 'acknowledge', alertId: 'lag:n2', atMs: 1_100 }]);
    expect(alertById(model, 'lag:n2')).toMatchObject({ acknowledged: true, acknowledgedAtMs: 1_100 });
  });

  it('ignores an acknowledgement for an alert that is not active', () => {
    const before = run(lagging);
    const after = reduce(before, { kind: 'acknowledge', alertId: 'no-leader', atMs: 1_000 });
    expect(after.alerts).toBe(before.alerts);
  });

  it('clears the acknowledgement when the alert escalates', () => {
    const model = run([...leaderLost, tick(3_001), { kind: 'acknowledge', alertId: 'no-leader', atMs: 3_100 }, ...stillLeaderless(12_000), tick(12_001)]);
    expect(alertById(model, 'no-leader')?.acknowledged).toBe(false);
  });

  it('mutes an alert for the requested duration', () => {
    const model = run([...lagging, { kind: 'mute', alertId: 'lag:n2', durationMs: 60_000, atMs: 1_100 }]);
    expect(alertById(model, 'lag:n2')?.mutedUntilMs).toBe(61_100);
  });

  it('keeps a mute across a clear and a re-raise within its duration', () => {
    const model = run([
      ...lagging,
      { kind: 'mute', alertId: 'lag:n2', durationMs: 60_000, atMs: 1_100 },
      ...clusterSamples(1_500),
      ...clusterSamples(2_000, { lag: { n2: { lagEntries: 5_000 } } }),
    ]);
    expect(alertById(model, 'lag:n2')).toMatchObject({ raisedAtMs: 2_000, mutedUntilMs: 61_100 });
  });

  it('does not mute a re-raise after the mute has run out', () => {
    const model = run([
      ...lagging,
      { kind: 'mute', alertId: 'lag:n2', durationMs: 1_000, atMs: 1_100 },
      ...clusterSamples(1_500),
      ...clusterSamples(3_000, { lag: { n2: { lagEntries: 5_000 } } }),
    ]);
    expect(alertById(model, 'lag:n2')?.mutedUntilMs).toBeNull();
  });

  it('lifts a mute given a duration of zero', () => {
    const model = run([...lagging, { kind: 'mute', alertId: 'lag:n2', durationMs: 60_000, atMs: 1_100 }, { kind: 'mute', alertId: 'lag:n2', durationMs: 0, atMs: 1_200 }]);
    expect([alertById(model, 'lag:n2')?.mutedUntilMs, model.mutes]).toEqual([null, {}]);
  });
});

describe('operator transfers and drills', () => {
  const transfer: ModelMessage = { kind: 'operator', action: { type: 'transfer', to: 'n3' }, atMs: 1_100 };
  const afterTransfer = [
    ...clusterSamples(1_000),
    transfer,
    sample(1_200, status('n1', { role: 'follower', leader: null, epoch: 3 })),
    sample(1_200, status('n2', { role: 'follower', leader: null, epoch: 3 })),
    sample(1_200, status('n3', { role: 'candidate', leader: null, epoch: 4 })),
    tick(2_500),
  ];

  it('annotates the leader change it causes as a planned transfer to its target', () => {
    const model = run([...afterTransfer, ...clusterSamples(2_600, { leader: 'n3', epoch: 4 })]);
    expect(model.failovers[0]).toMatchObject({ from: 'n1', to: 'n3', cause: 'planned transfer', operatorInitiated: true, note: 'planned transfer to n3' });
  });

  it('mutes the no-leader alert raised during its grace period', () => {
    const model = run(afterTransfer);
    expect(alertById(model, 'no-leader')?.mutedUntilMs).toBe(21_100);
  });

  it('mutes the leader-changed alert it causes and makes it informational', () => {
    const model = run([...afterTransfer, ...clusterSamples(2_600, { leader: 'n3', epoch: 4 })]);
    expect(alertByRule(model, 'leader-changed')).toMatchObject({ severity: 'info', mutedUntilMs: 62_600 });
  });

  it('does not mute a later unplanned leader change with the planned one', () => {
    const model = run([...afterTransfer, ...clusterSamples(2_600, { leader: 'n3', epoch: 4 }), ...clusterSamples(5_000, { leader: 'n2', epoch: 5, missing: ['n3'] })]);
    const changed = alertByRule(model, 'leader-changed');
    expect(changed).toMatchObject({ title: 'Leader changed: n3 → n2', severity: 'warning', mutedUntilMs: null });
  });

  it('does not explain a leader change to another node than its target', () => {
    const model = run([...clusterSamples(1_000), transfer, ...clusterSamples(1_600, { leader: 'n2', epoch: 4 })]);
    expect(model.failovers[0]?.cause).toBe('unknown');
  });

  it('explains only the first leader change to its target', () => {
    const model = run([
      ...clusterSamples(1_000),
      transfer,
      ...clusterSamples(1_600, { leader: 'n3', epoch: 4 }),
      ...clusterSamples(2_600, { leader: 'n1', epoch: 5 }),
      ...clusterSamples(3_600, { leader: 'n3', epoch: 6 }),
    ]);
    expect(model.failovers.map((failover) => failover.cause)).toEqual(['planned transfer', 'unknown', 'unknown']);
  });

  it('does not explain a leader change after its grace period', () => {
    const model = run([...clusterSamples(1_000), transfer, ...clusterSamples(30_000), ...clusterSamples(30_500, { leader: 'n3', epoch: 4 })]);
    expect(model.failovers[0]?.cause).toBe('unknown');
  });

  it('annotates a leader change during an operator drill as a drill', () => {
    const model = run([
      ...clusterSamples(1_000),
      { kind: 'operator', action: { type: 'drill', nodeId: 'n1', drill: 'pause' }, atMs: 1_100 },
      ...clusterSamples(3_000, { leader: 'n2', epoch: 4, missing: ['n1'] }),
    ]);
    expect(model.failovers[0]).toMatchObject({ cause: 'drill', operatorInitiated: true, note: 'drill pause on n1' });
  });

  it('puts the operator\'s request on the timeline', () => {
    const model = run([...clusterSamples(1_000), transfer]);
    expect(model.timeline.at(-1)).toMatchObject({ kind: 'operator', text: 'Operator started a leadership transfer to n3' });
  });
});
