import type { HubSnapshot } from '../../shared/protocol';

export interface AlertNotice {
  key: string;
  title: string;
  body: string;
}

/**
 * Follows hub snapshots for the desktop shell: how many alerts are active
 * (the tray badge) and which critical alerts are new (OS notifications).
 * Pure, so the shell's behaviour is testable without Electron.
 */
export class AlertWatch {
  private readonly notified = new Set<string>();
  private static readonly notifiedMax = 1_000;

  update(snapshot: HubSnapshot): { activeCount: number; fresh: AlertNotice[] } {
    let activeCount = 0;
    const fresh: AlertNotice[] = [];
    const live = new Set<string>();
    for (const cluster of snapshot.clusters) {
      for (const alert of cluster.overview?.alerts ?? []) {
        activeCount += 1;
        const key = `${cluster.profileId}:${alert.id}:${alert.raisedAtMs}`;
        live.add(key);
        if (alert.severity !== 'critical' || alert.muted || alert.acknowledged || this.notified.has(key)) continue;
        this.notified.add(key);
        fresh.push({ key, title: `${cluster.name}: ${alert.title}`, body: alert.detail });
      }
    }
    // Forget alerts that cleared, so a later re-raise notifies again; stay bounded either way.
    for (const key of this.notified) if (!live.has(key) || this.notified.size > AlertWatch.notifiedMax) this.notified.delete(key);
    return { activeCount, fresh };
  }
}
