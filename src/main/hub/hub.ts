import {
  bridgeRequestSchemas,
  err,
  isBridgeRequestName,
  ok,
  parse,
  type AppInfo,
  type BridgeRequestArg,
  type BridgeRequestName,
  type BridgeResponses,
  type ClusterSummary,
  type HubSnapshot,
  type ProfileInput,
  type Result,
} from '../../shared/protocol';
import os from 'node:os';
import type { Clock, Logger } from '../../shared/logger';
import { AuditLog } from './audit-log';
import { ClusterConnection } from './cluster-connection';
import { ProfileStore, summarize } from './profiles';

/** Snapshots reach the renderer at most this often, however busy the cluster. */
export const snapshotIntervalMsMin = 1000 / 30;
/** Link states age (connected → stale → unreachable) even when no message arrives. */
const livenessRefreshMs = 500;

function safeUsername(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

export interface HubOptions {
  configDir: string;
  appInfo: AppInfo;
  clock: Clock;
  logger: Logger;
}

type Handler<N extends BridgeRequestName> = (arg: BridgeRequestArg<N>) => Promise<Result<BridgeResponses[N]>>;

/**
 * The hub: the part of the desktop app that talks to agents. It lives in the
 * Electron main process but imports nothing from electron, so tests and web
 * mode run the very same code in plain Node.
 */
export class Hub {
  private readonly connections = new Map<string, ClusterConnection>();
  private readonly listeners = new Set<(snapshot: HubSnapshot) => void>();
  private pushTimer: NodeJS.Timeout | null = null;
  private lastPushAtMs = 0;
  private readonly livenessTimer: NodeJS.Timeout;
  private readonly handlers: { [N in BridgeRequestName]: Handler<N> };
  private readonly audit: AuditLog;
  private readonly who: string;

  private constructor(
    private readonly options: HubOptions,
    private readonly profiles: ProfileStore,
  ) {
    this.handlers = {
      'app:info': async () => ok(this.options.appInfo),
      'profiles:list': async () => ok(this.profiles.list().map(summarize)),
      'profiles:add': async (input) => {
        const added = await this.profiles.add(input);
        return added.ok ? ok(summarize(added.data)) : added;
      },
      'profiles:remove': async ({ id }) => {
        this.disconnect(id);
        return ok({ removed: await this.profiles.remove(id) });
      },
      'cluster:connect': async ({ profileId }) => this.connect(profileId),
      'cluster:disconnect': async ({ profileId }) => ok({ disconnected: this.disconnect(profileId) }),
      'alerts:acknowledge': async ({ profileId, alertId }) => this.withConnection(profileId, (c) => ok({ acknowledged: c.acknowledge(alertId) })),
      'alerts:mute': async ({ profileId, alertId, durationMs }) => this.withConnection(profileId, (c) => ok({ muted: c.mute(alertId, durationMs) })),
      'failover:preflight': async ({ profileId, target }) => this.withConnection(profileId, (c) => ok(c.preflight(target))),
      'failover:start': async ({ profileId, target }) => this.withConnection(profileId, (c) => c.transfer(target)),
      'drill:run': async ({ profileId, nodeId, drill }) => this.withConnection(profileId, (c) => c.drill(nodeId, drill)),
    };
    this.audit = new AuditLog(options.configDir);
    this.who = `${safeUsername()}@${os.hostname()}`;
    this.livenessTimer = setInterval(() => {
      for (const connection of this.connections.values()) connection.tick();
      this.schedulePush();
    }, livenessRefreshMs);
    this.livenessTimer.unref();
  }

  static async create(options: HubOptions): Promise<Result<Hub>> {
    const profiles = await ProfileStore.open(options.configDir);
    if (!profiles.ok) return profiles;
    return ok(new Hub(options, profiles.data));
  }

  /** The one entry point for renderer requests, from IPC or from web mode. */
  async request(name: unknown, arg: unknown): Promise<Result<unknown>> {
    if (!isBridgeRequestName(name)) return err('unknown_request', `unknown request "${String(name)}"`);
    const parsed = parse(bridgeRequestSchemas[name], arg, name);
    if (!parsed.ok) return parsed;
    const handler = this.handlers[name] as Handler<typeof name>;
    try {
      return await handler(parsed.data as never);
    } catch (error) {
      this.options.logger.error({ request: name, error: (error as Error).message }, 'request failed');
      return err('internal', `${name} failed: ${(error as Error).message}`);
    }
  }

  /**
   * Saves (or refreshes) a profile by name and connects to it: how `npm start`
   * points the app at its demo cluster, whose tokens change on every start.
   */
  async connectProfile(input: ProfileInput): Promise<Result<ClusterSummary>> {
    const existing = this.profiles.list().find((profile) => profile.name === input.name);
    if (existing !== undefined) {
      this.disconnect(existing.id);
      await this.profiles.remove(existing.id);
    }
    const added = await this.profiles.add(input);
    if (!added.ok) return added;
    return this.connect(added.data.id);
  }

  subscribe(listener: (snapshot: HubSnapshot) => void): () => void {
    this.listeners.add(listener);
    // The first snapshot goes out at once; it counts against the push rate like any other.
    this.lastPushAtMs = this.options.clock.nowMs();
    listener(this.snapshot());
    return () => this.listeners.delete(listener);
  }

  snapshot(): HubSnapshot {
    return {
      atMs: this.options.clock.nowMs(),
      clusters: [...this.connections.values()].map((connection) => connection.summary()),
    };
  }

  close(): void {
    clearInterval(this.livenessTimer);
    if (this.pushTimer !== null) clearTimeout(this.pushTimer);
    for (const id of [...this.connections.keys()]) this.disconnect(id);
    this.listeners.clear();
  }

  private connect(profileId: string): Result<ClusterSummary> {
    const existing = this.connections.get(profileId);
    if (existing !== undefined) return ok(existing.summary());
    const profile = this.profiles.get(profileId);
    if (profile === undefined) return err('unknown_profile', `no profile with id "${profileId}"`);
    const connection = new ClusterConnection(profile, {
      clock: this.options.clock,
      logger: this.options.logger,
      audit: this.audit,
      who: this.who,
      changed: () => this.schedulePush(),
    });
    this.connections.set(profileId, connection);
    this.schedulePush();
    return ok(connection.summary());
  }

  private disconnect(profileId: string): boolean {
    const connection = this.connections.get(profileId);
    if (connection === undefined) return false;
    connection.close();
    this.connections.delete(profileId);
    this.schedulePush();
    return true;
  }

  private async withConnection<T>(profileId: string, act: (connection: ClusterConnection) => Result<T> | Promise<Result<T>>): Promise<Result<T>> {
    const connection = this.connections.get(profileId);
    if (connection === undefined) return err('not_connected', `no connected cluster for profile "${profileId}"`);
    return act(connection);
  }

  /** Coalesces bursts into at most one push per `snapshotIntervalMsMin`. */
  private schedulePush(): void {
    if (this.pushTimer !== null || this.listeners.size === 0) return;
    const waitMs = Math.max(0, this.lastPushAtMs + snapshotIntervalMsMin - this.options.clock.nowMs());
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      this.lastPushAtMs = this.options.clock.nowMs();
      const snapshot = this.snapshot();
      for (const listener of this.listeners) listener(snapshot);
    }, waitMs);
  }
}
