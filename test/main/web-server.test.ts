import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { io as connect } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/main/hub/hub';
import { startWebServer, type WebServer } from '../../src/main/web/server';
import { silentLogger } from '../../src/shared/logger';
import { bridgeChannels } from '../../src/shared/protocol';

describe('web mode server', () => {
  let dir: string;
  let hub: Hub;
  let server: WebServer;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qs-web-'));
    await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>t</title>');
    const created = await Hub.create({ configDir: dir, appInfo: { version: 't', mode: 'web', platform: 'linux' }, clock: { nowMs: () => Date.now() }, logger: silentLogger });
    if (!created.ok) throw new Error(created.error.message);
    hub = created.data;
    const started = await startWebServer({ hub, rendererDir: dir, host: '127.0.0.1', port: 0, logger: silentLogger, sessionToken: 'session-abc' });
    if (!started.ok) throw new Error(started.error.message);
    server = started.data;
  });

  afterEach(async () => {
    hub.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the renderer on loopback with a strict content security policy', async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain('unsafe');
  });

  it('refuses a bridge connection without the session token', async () => {
    const socket = connect(`http://127.0.0.1:${server.port}`, { auth: { session: 'guess' }, transports: ['websocket'], reconnection: false });
    const message = await new Promise<string>((resolve) => socket.on('connect_error', (error) => resolve(error.message)));
    socket.close();
    expect(message).toContain('unauthorized');
  });

  it('answers bridge requests and pushes a snapshot over socket.io with the session token', async () => {
    const socket = connect(`http://127.0.0.1:${server.port}`, { auth: { session: 'session-abc' }, transports: ['websocket'], reconnection: false });
    const snapshot = new Promise<unknown>((resolve) => socket.once(bridgeChannels.snapshot, resolve));
    const info = await socket.timeout(5_000).emitWithAck(bridgeChannels.request, 'app:info', null);
    expect(info).toEqual({ ok: true, data: { version: 't', mode: 'web', platform: 'linux' } });
    const refused = await socket.timeout(5_000).emitWithAck(bridgeChannels.request, 'profiles:add', { name: '' });
    expect(refused.ok).toBe(false);
    expect(await snapshot).toMatchObject({ clusters: [] });
    socket.close();
  });

  it('refuses to start without a built renderer, saying what to run', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'qs-web-empty-'));
    const started = await startWebServer({ hub, rendererDir: empty, host: '127.0.0.1', port: 0, logger: silentLogger });
    await rm(empty, { recursive: true, force: true });
    expect(started.ok).toBe(false);
    if (!started.ok) expect(started.error.message).toContain('npm run build');
  });
});
