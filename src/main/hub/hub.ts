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
import { ReplayService } from './recorder/replay-service';
import path from 'node:path';

/** Snapshots reach the renderer at most this often, however busy the cluster. */
export const snapshotIntervalMsMin = 1000 / 30;
/** Link states age (connected → stale → unreachable) even when no message arrives. */
const livenessRefreshMs = 500;

/** One window's subscription to hub snapshots. */
export interface HubSubscription {
  readonly listener: (snapshot: HubSnapshot) => void;
  /** The profile this window shows in full; null: the first connected cluster. */
  focus: string | null;
  unsubscribe(): void;
}

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
  /** The recording database; default `configDir/recording.sqlite`; null records nothing. */
  recordingPath?: string | null;
}

type Handler<N extends BridgeRequestName> = (arg: BridgeRequestArg<N>) => Promise<Result<BridgeResponses[N]>>;

/**
 * The hub: the part of the desktop app that talks to agents. It lives in the
 * Electron main process but imports nothing from electron, so tests and web
 * mode run the very same code in plain Node.
 */
export class Hub {
  private readonly connections = new Map<string, ClusterConnection>();
  private readonly subscriptions = new Set<HubSubscription>();
  /** Recorder, incidents and player (issue 7). */
  readonly replay: ReplayService;
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
    this.replay = new ReplayService({
      recordingPath: options.recordingPath === undefined ? path.join(options.configDir, 'recording.sqlite') : options.recordingPath,
      exportDir: path.join(options.configDir, 'exports'),
      appVersion: options.appInfo.version,
      clock: options.clock,
      logger: options.logger,
      changed: () => this.schedulePush(),
      profileName: (profileId) => this.connections.get(profileId)?.profile.name ?? null,
    });
    this.handlers = {
      ...this.replay.handlers(),
      'app:info': async () => ok(this.options.appInfo),
      'profiles:list': async () => ok(this.profiles.list().map(summarize)),
      'profiles:add': async (input) => {
        const added = await this.profiles.add(input);
        return added.ok ? ok(summarize(added.data)) : added;
      },
      'profiles:update': async (change) => {
        const updated = await this.profiles.update(change);
        if (!updated.ok) return updated;
        // A connected cluster picks the change up at once: new endpoints, token or thresholds.
        if (this.connections.has(updated.data.id)) {
          this.disconnect(updated.data.id);
          const reconnected = this.connect(updated.data.id);
          if (!reconnected.ok) return reconnected;
        }
        return ok(summarize(updated.data));
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
      'node:scrub': async ({ profileId, nodeId }) => this.withConnection(profileId, (c) => c.scrub(nodeId)),
      // Answered in `request`, which knows the asking window.
      'view:focus': async ({ profileId }) => ok({ profileId }),
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

  /**
   * The one entry point for renderer requests, from IPC or from web mode.
   * `from` is the asking window's subscription, for requests about its view.
   */
  async request(name: unknown, arg: unknown, from?: HubSubscription): Promise<Result<unknown>> {
    if (!isBridgeRequestName(name)) return err('unknown_request', `unknown request "${String(name)}"`);
    const parsed = parse(bridgeRequestSchemas[name], arg, name);
    if (!parsed.ok) return parsed;
    if (name === 'view:focus') {
      const { profileId } = parsed.data as BridgeRequestArg<'view:focus'>;
      if (from !== undefined) from.focus = profileId;
      this.schedulePush();
      return ok({ profileId });
    }
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

  /**
   * Subscribes a window to snapshots. Each window gets the overview of every
   * cluster and the full view of the one it focuses, so dozens of clusters
   * cost little: the heavy part is built once per push for whoever needs it.
   */
  subscribe(listener: (snapshot: HubSnapshot) => void): HubSubscription {
    const subscription: HubSubscription = {
      listener,
      focus: null,
      unsubscribe: () => {
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    // The first snapshot goes out at once; it counts against the push rate like any other.
    this.lastPushAtMs = this.options.clock.nowMs();
    listener(this.snapshotFor([subscription])[0] ?? this.snapshot());
    return subscription;
  }

  /** Every cluster in full: for tests and tools, not pushed to windows. */
  snapshot(): HubSnapshot {
    return {
      atMs: this.options.clock.nowMs(),
      clusters: [...this.connections.values()].map((connection) => connection.summary(true)),
      replay: this.replay.state(),
    };
  }

  private snapshotFor(subscriptions: HubSubscription[]): HubSnapshot[] {
    const atMs = this.options.clock.nowMs();
    const connections = [...this.connections.values()];
    const first = connections[0]?.profile.id ?? null;
    const focusOf = (subscription: HubSubscription) =>
      subscription.focus !== null && this.connections.has(subscription.focus) ? subscription.focus : first;
    const focused = new Set(subscriptions.map(focusOf));
    const replay = this.replay.state();
    const brief = new Map(connections.map((connection) => [connection.profile.id, connection.summary(false)]));
    const full = new Map(connections.filter((connection) => focused.has(connection.profile.id)).map((connection) => [connection.profile.id, connection.summary(true)]));
    return subscriptions.map((subscription) => {
      const focus = focusOf(subscription);
      return {
        atMs,
        replay,
        clusters: connections.map((connection) => (connection.profile.id === focus ? full.get(focus) : undefined) ?? brief.get(connection.profile.id)!),
      };
    });
  }

  close(): void {
    clearInterval(this.livenessTimer);
    if (this.pushTimer !== null) clearTimeout(this.pushTimer);
    for (const id of [...this.connections.keys()]) this.disconnect(id);
    this.subscriptions.clear();
    this.replay.close();
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
      record: this.replay.recordFor(profile.id, profile.name),
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
    if (this.pushTimer !== null || this.subscriptions.size === 0) return;
    const waitMs = Math.max(0, this.lastPushAtMs + snapshotIntervalMsMin - this.options.clock.nowMs());
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      this.lastPushAtMs = this.options.clock.nowMs();
      const subscriptions = [...this.subscriptions];
      const snapshots = this.snapshotFor(subscriptions);
      subscriptions.forEach((subscription, i) => {
        const snapshot = snapshots[i];
        if (snapshot !== undefined) subscription.listener(snapshot);
      });
    }, waitMs);
  }
}
