import os from 'node:os';
import path from 'node:path';
import { Hub } from '../hub/hub';
import type { Logger } from '../../shared/logger';
import { startWebServer, type WebServer } from './server';

export interface WebModeOptions {
  host: string;
  port: number;
  rendererDir: string;
  configDir: string;
  version: string;
  logger: Logger;
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
