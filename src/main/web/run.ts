import os from 'node:os';
import path from 'node:path';
import { Hub } from '../hub/hub';
import type { Logger } from '../../shared/logger';
import type { ProfileInput } from '../../shared/protocol';
import { startWebServer, type WebServer } from './server';

export interface WebModeOptions {
  host: string;
  port: number;
  rendererDir: string;
  configDir: string;
  version: string;
  logger: Logger;
  /** Profiles to save and connect at start (the demo cluster). */
  connect?: ProfileInput[];
}

export function defaultConfigDir(): string {
  if (process.env.QUORUMSCOPE_CONFIG_DIR) return process.env.QUORUMSCOPE_CONFIG_DIR;
  const base = process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config');
  return path.join(base, 'quorumscope');
}

/** Whether a browser window can be shown here at all. */
export function hasDisplay(): boolean {
  if (process.platform !== 'linux') return true;
  return Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
}

/** Starts the hub and serves it with the renderer; the composition root of web mode. */
export async function runWebMode(options: WebModeOptions): Promise<{ hub: Hub; server: WebServer } | { error: string }> {
  const hub = await Hub.create({
    configDir: options.configDir,
    appInfo: { version: options.version, mode: 'web', platform: process.platform },
    clock: { nowMs: () => Date.now() },
    logger: options.logger,
  });
  if (!hub.ok) return { error: hub.error.message };
  for (const profile of options.connect ?? []) {
    const connected = await hub.data.connectProfile(profile);
    if (!connected.ok) options.logger.warn({ profile: profile.name, error: connected.error.message }, 'cannot connect a start-up profile');
  }
  const server = await startWebServer({
    hub: hub.data,
    rendererDir: options.rendererDir,
    host: options.host,
    port: options.port,
    logger: options.logger,
  });
  if (!server.ok) {
    hub.data.close();
    return { error: server.error.message };
  }
  return { hub: hub.data, server: server.data };
}
