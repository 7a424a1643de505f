import { describe, expect, it } from 'vitest';
import { AlertWatch } from '../../src/main/desktop/alert-watch';
import type { HubSnapshot } from '../../src/shared/protocol';

function snapshot(alerts: Array<{ id: string; severity: 'critical' | 'warning' | 'info'; muted?: boolean; raisedAtMs?: number }>): HubSnapshot {
  return {
    atMs: 1,
    replay: null,
    clusters: [
      {
        profileId: 'p',
        name: 'prod',
        clusterId: 'c',
        links: [],
        access: 'viewer',
        failover: null,
        audit: [],
        model: null,
        overview: {
          alerts: alerts.map((alert) => ({
            id: alert.id,
            rule: 'no-leader',
            severity: alert.severity,
            title: `title ${alert.id}`,
            detail: `detail ${alert.id}`,
            nodeId: null,
            raisedAtMs: alert.raisedAtMs ?? 10,
            clearedAtMs: null,
            acknowledged: false,
            acknowledgedAtMs: null,
            mutedUntilMs: null,
            muted: alert.muted ?? false,
          })),
        } as unknown as NonNullable<HubSnapshot['clusters'][number]['overview']>,
      },
    ],
  };
}

describe('desktop alert watch', () => {
  it('counts every active alert for the tray badge', () => {
    expect(new AlertWatch().update(snapshot([{ id: 'a', severity: 'warning' }, { id: 'b', severity: 'info' }])).activeCount).toBe(2);
  });

  it('notifies a new critical alert once, and not a muted one', () => {
    const watch = new AlertWatch();
    const first = watch.update(snapshot([{ id: 'split-brain', severity: 'critical' }, { id: 'x', severity: 'critical', muted: true }]));
    expect(first.fresh.map((notice) => notice.title)).toEqual(['prod: title split-brain']);
    expect(watch.update(snapshot([{ id: 'split-brain', severity: 'critical' }])).fresh).toEqual([]);
  });

  it('notifies again when the alert clears and is raised anew', () => {
    const watch = new AlertWatch();
    watch.update(snapshot([{ id: 'no-leader', severity: 'critical', raisedAtMs: 10 }]));
    watch.update(snapshot([]));
    expect(watch.update(snapshot([{ id: 'no-leader', severity: 'critical', raisedAtMs: 50 }])).fresh).toHaveLength(1);
  });
});
