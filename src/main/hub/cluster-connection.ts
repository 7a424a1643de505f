import { randomUUID } from 'node:crypto';
import {
  createClusterModel,
  preflightChecks,
  reduce,
  summarizeForRenderer,
  summarizeOverview,
  type ClusterModel,
  type ModelMessage,
  type PreflightCheck,
} from '../../shared/model';
import {
  err,
  ok,
  type AuditEntry,
  type ClusterSummary,
  type Command,
  type Drill,
  type FailoverProgress,
  type LinkSummary,
  type Profile,
  type Result,
} from '../../shared/protocol';
import type { Clock, Logger } from '../../shared/logger';
import { AgentLink, type AgentLinkListener } from './agent-link';
import type { AuditLog } from './audit-log';

export const auditEntriesShownMax = 50;
/** The agent itself waits for the target to lead; this bounds the whole round trip. */
export const transferCommandTimeoutMs = 15_000;
/** After the agent says the target leads, the hub waits this long to see it in status too. */
export const transferVerifyTimeoutMs = 5_000;
export const drillCommandTimeoutMs = 5_000;

export interface ConnectionDeps {
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  who: string;
  /** Called whenever something the renderer shows may have changed. */
  changed: () => void;
  /** Called with every message reduced and the model it produced: the recorder. */
  record?: (message: ModelMessage, model: ClusterModel) => void;
}

/**
 * One connected cluster: its agent links, its model (fed through the shared
 * reducer, stamped with the hub's receive time, since agents' clocks may be
 * skewed), manual failover and drills, and the audit entries they leave.
 */
export class ClusterConnection {
  private model: ClusterModel;
  private readonly links: AgentLink[];
  private readonly linkStates = new Map<AgentLink, LinkSummary['state']>();
  private failover: FailoverProgress | null = null;
  private audit: AuditEntry[] = [];
  private clusterId: string | null = null;

  constructor(
    readonly profile: Profile,
    private readonly deps: ConnectionDeps,
  ) {
    const thresholds = profile.thresholds ?? {};
    this.model = createClusterModel({
      ...(thresholds.followerLagEntries === undefined ? {} : { followerLagWarningEntries: thresholds.followerLagEntries }),
      ...(thresholds.followerLagMs === undefined ? {} : { followerLagWarningMs: thresholds.followerLagMs }),
      // The critical no-leader alert stays ten times later than the warning, as by default.
      ...(thresholds.leaderlessWarningAfterMs === undefined
        ? {}
        : { leaderlessWarningAfterMs: thresholds.leaderlessWarningAfterMs, leaderlessCriticalAfterMs: 10 * thresholds.leaderlessWarningAfterMs }),
    });
    const listener: AgentLinkListener = {
      hello: (_link, hello) => {
        this.clusterId ??= hello.clusterId;
      },
      samples: (_link, samples) => {
        const atMs = this.deps.clock.nowMs();
        for (const sample of samples) this.apply({ kind: 'sample', sample: { ...sample, atMs } });
      },
      event: (_link, event) => this.apply({ kind: 'event', event: { ...event, atMs: this.deps.clock.nowMs() } }),
      changed: (link) => this.noticeLink(link),
    };
    this.links = profile.endpoints.map((endpoint) => new AgentLink(endpoint, profile.token, deps.clock, deps.logger, listener));
  }

  /** Advances time-based state (leaderless time, staleness, link ageing). */
  tick(): void {
    for (const link of this.links) this.noticeLink(link);
    this.apply({ kind: 'tick', atMs: this.deps.clock.nowMs() });
  }

  close(): void {
    for (const link of this.links) link.close();
  }

  /** The overview of this cluster, and its full view when `detailed`. */
  summary(detailed = true): ClusterSummary {
    const access = this.links.map((link) => link.hello?.access).find((value) => value !== undefined) ?? null;
    const heard = this.links.some((link) => link.hello !== null);
    return {
      profileId: this.profile.id,
      name: this.profile.name,
      clusterId: this.clusterId,
      links: this.links.map((link) => link.summary()),
      access,
      overview: heard ? summarizeOverview(this.model) : null,
      model: heard && detailed ? summarizeForRenderer(this.model) : null,
      failover: this.failover,
      audit: this.audit.slice(-auditEntriesShownMax),
    };
  }

  acknowledge(alertId: string): boolean {
    const known = this.model.alerts.some((alert) => alert.id === alertId);
    if (known) this.apply({ kind: 'acknowledge', alertId, atMs: this.deps.clock.nowMs() });
    return known;
  }

  mute(alertId: string, durationMs: number): boolean {
    this.apply({ kind: 'mute', alertId, durationMs, atMs: this.deps.clock.nowMs() });
    return true;
  }

  preflight(target: string): { target: string; checks: PreflightCheck[] } {
    return { target, checks: preflightChecks(this.model, target) };
  }

  /**
   * A manual failover: pre-flight, command, verification, audit. It refuses,
   * with every failed check named, rather than move leadership unsafely.
   */
  async transfer(target: string): Promise<Result<AuditEntry>> {
    if (this.failover?.phase === 'in-progress') return err('busy', `a transfer to ${this.failover.target} is already running`);
    const startedAtMs = this.deps.clock.nowMs();
    const from = this.model.leader?.nodeId ?? null;
    const failed = preflightChecks(this.model, target).filter((check) => !check.ok);
    if (failed.length > 0) {
      const detail = failed.map((check) => `${check.check}: ${check.detail}`).join('; ');
      return ok(await this.record({ action: 'transfer', from, to: target, outcome: 'refused', startedAtMs, detail }));
    }
    const leaderLink = this.links.find((link) => link.hello?.nodeId === from && link.connected);
    if (from === null || leaderLink === undefined) {
      return ok(await this.record({ action: 'transfer', from, to: target, outcome: 'refused', startedAtMs, detail: 'the leader is not connected to the app' }));
    }
    this.failover = { target, from, phase: 'in-progress', progress: `asking ${from} to hand over to ${target}`, outcome: null, startedAtMs };
    this.apply({ kind: 'operator', action: { type: 'transfer', to: target }, atMs: startedAtMs });
    const answer = await leaderLink.command({ type: 'leadership:transfer', to: target }, transferCommandTimeoutMs);
    if (!answer.ok) return ok(await this.finishTransfer(from, target, startedAtMs, 'failed', `${answer.error.code}: ${answer.error.message}`));
    this.setProgress(`${from} reports: ${answer.data.detail}; verifying`);
    const verified = await this.waitForLeader(target, transferVerifyTimeoutMs);
    return ok(
      await this.finishTransfer(
        from,
        target,
        startedAtMs,
        verified ? 'completed' : 'failed',
        verified ? `${target} leads (${answer.data.detail})` : `${from} reported success but the status does not show ${target} leading`,
      ),
    );
  }

  async drill(nodeId: string, drill: Drill): Promise<Result<{ detail: string }>> {
    const connected = this.links.some((link) => link.hello?.nodeId === nodeId);
    if (connected && drill.kind !== 'resume' && drill.kind !== 'heal') {
      // Recorded before the command goes out, so the leader change a drill causes is already explained.
      this.apply({ kind: 'operator', action: { type: 'drill', nodeId, drill: drill.kind }, atMs: this.deps.clock.nowMs() });
    }
    return this.commandNode(nodeId, { type: 'drill:run', drill }, 'drill', (detail) => `${drill.kind}: ${detail}`);
  }

  /** Asks one node to scrub its storage now; findings arrive as events. */
  scrub(nodeId: string): Promise<Result<{ detail: string }>> {
    return this.commandNode(nodeId, { type: 'scrub:start' }, 'scrub', (detail) => detail);
  }

  /** Sends one operator command to one node and leaves an audit entry with its outcome. */
  private async commandNode(
    nodeId: string,
    command: Command,
    action: AuditEntry['action'],
    describe: (detail: string) => string,
  ): Promise<Result<{ detail: string }>> {
    const link = this.links.find((candidate) => candidate.hello?.nodeId === nodeId);
    if (link === undefined) return err('unknown_node', `${nodeId} is not connected to the app`);
    const startedAtMs = this.deps.clock.nowMs();
    const answer = await link.command(command, drillCommandTimeoutMs);
    await this.record({
      action,
      from: null,
      to: nodeId,
      outcome: answer.ok ? 'completed' : 'failed',
      startedAtMs,
      detail: describe(answer.ok ? answer.data.detail : answer.error.message),
    });
    return answer;
  }

  private apply(message: ModelMessage): void {
    this.model = reduce(this.model, message);
    this.deps.record?.(message, this.model);
    this.deps.changed();
  }

  private noticeLink(link: AgentLink): void {
    const state = link.state();
    if (this.linkStates.get(link) === state) return;
    this.linkStates.set(link, state);
    const nodeId = link.hello?.nodeId;
    if (nodeId !== undefined) this.apply({ kind: 'link', nodeId, endpoint: link.endpoint, state, atMs: this.deps.clock.nowMs() });
    else this.deps.changed();
  }

  private setProgress(progress: string): void {
    if (this.failover !== null) this.failover = { ...this.failover, progress };
    this.deps.changed();
  }

  private async waitForLeader(target: string, timeoutMs: number): Promise<boolean> {
    const deadline = this.deps.clock.nowMs() + timeoutMs;
    while (this.deps.clock.nowMs() < deadline) {
      if (this.model.leader?.nodeId === target) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.model.leader?.nodeId === target;
  }

  private async finishTransfer(from: string, target: string, startedAtMs: number, outcome: AuditEntry['outcome'], detail: string): Promise<AuditEntry> {
    const entry = await this.record({ action: 'transfer', from, to: target, outcome, startedAtMs, detail });
    this.failover = {
      target,
      from,
      phase: outcome === 'completed' ? 'succeeded' : 'failed',
      progress: null,
      outcome: detail,
      startedAtMs,
    };
    this.deps.changed();
    return entry;
  }

  private async record(fields: { action: AuditEntry['action']; from: string | null; to: string; outcome: AuditEntry['outcome']; startedAtMs: number; detail: string }): Promise<AuditEntry> {
    const entry: AuditEntry = {
      id: randomUUID(),
      atMs: fields.startedAtMs,
      who: this.deps.who,
      profile: this.profile.name,
      action: fields.action,
      from: fields.from,
      to: fields.to,
      outcome: fields.outcome,
      durationMs: Math.round(this.deps.clock.nowMs() - fields.startedAtMs),
      detail: fields.detail,
    };
    this.audit = [...this.audit, entry].slice(-auditEntriesShownMax);
    try {
      await this.deps.audit.append(entry);
    } catch (error) {
      this.deps.logger.error({ error: (error as Error).message }, 'cannot write the audit log');
    }
    this.deps.changed();
    return entry;
  }
}
