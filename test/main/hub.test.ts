import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Server as SocketServer } from 'socket.io';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Hub } from '../../src/main/hub/hub';
import type { Logger } from '../../src/shared/logger';
import type { ClusterSummary, HubSnapshot } from '../../src/shared/protocol';
import { validStatus } from '../support/status';

interface FakeAgent {
  endpoint: string;
  io: SocketServer;
  close(): Promise<void>;
}

/** A real socket.io server on an ephemeral loopback port that speaks the agent side of the protocol. */
async function startFakeAgent(token: string, behave: (socket: import('socket.io').Socket) => void): Promise<FakeAgent> {
  const http: HttpServer = createServer();
  const io = new SocketServer(http);
  io.use((socket, next) => ((socket.handshake.auth as { token?: string }).token === token ? next() : next(new Error('unauthorized'))));
  io.on('connection', behave);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    endpoint: `127.0.0.1:${port}`,
    io,
    close: () => new Promise((resolve) => io.close(() => resolve())),
  };
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug: () => {}, info: () => {}, error: () => {}, warn: (_fields, message) => warnings.push(message) };
}

const hello = { protocolVersion: 1, nodeId: 'n1', clusterId: 'demo', engine: 'raft', access: 'viewer', drillsAllowed: false, bootId: 'b1', statusIntervalMs: 100 };

async function until<T>(probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('hub', () => {
  let configDir: string;
  let hub: Hub;
  let logger: ReturnType<typeof recordingLogger>;
  const agents: FakeAgent[] = [];

  beforeEach(async () => {
    configDir = await mkdtemp(path.join(os.tmpdir(), 'qs-hub-'));
    logger = recordingLogger();
    const created = await Hub.create({ configDir, appInfo: { version: 't', mode: 'web', platform: 'linux' }, clock: { nowMs: () => Date.now() }, logger });
    if (!created.ok) throw new Error(created.error.message);
    hub = created.data;
  });

  afterEach(async () => {
    hub.close();
    await Promise.all(agents.splice(0).map((agent) => agent.close()));
    await rm(configDir, { recursive: true, force: true });
  });

  async function connectTo(endpoint: string, token: string): Promise<string> {
    const added = await hub.request('profiles:add', { name: `c-${endpoint}-${token}`, endpoints: [endpoint], token });
    if (!added.ok) throw new Error(added.error.message);
    const id = (added.data as { id: string }).id;
    const connected = await hub.request('cluster:connect', { profileId: id });
    expect(connected.ok).toBe(true);
    return id;
  }

  function latestCluster(snapshots: HubSnapshot[], profileId: string): ClusterSummary | undefined {
    return snapshots.at(-1)?.clusters.find((cluster) => cluster.profileId === profileId);
  }

  it('refuses an unknown request and a malformed argument with a clear error', async () => {
    const unknown = await hub.request('profiles:drop-all', null);
    expect(unknown).toEqual({ ok: false, error: { code: 'unknown_request', message: 'unknown request "profiles:drop-all"' } });
    const malformed = await hub.request('profiles:add', { name: 'x', endpoints: ['nope'], token: 't' });
    expect(malformed.ok).toBe(false);
    if (!malformed.ok) expect(malformed.error.message).toContain('profiles:add.endpoints.0');
  });

  it('keeps profiles across restarts in a private file, and never returns the token', async () => {
    const added = await hub.request('profiles:add', { name: 'prod', endpoints: ['10.0.0.1:7401'], token: 'sekret' });
    expect(added.ok).toBe(true);
    expect(JSON.stringify(added)).not.toContain('sekret');
    const file = path.join(configDir, 'profiles.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    hub.close();
    const reopened = await Hub.create({ configDir, appInfo: { version: 't', mode: 'web', platform: 'linux' }, clock: { nowMs: () => Date.now() }, logger });
    if (!reopened.ok) throw new Error(reopened.error.message);
    hub = reopened.data;
    const listed = await hub.request('profiles:list', null);
    expect(listed.ok && (listed.data as Array<{ name: string; hasToken: boolean }>)).toEqual([
      expect.objectContaining({ name: 'prod', hasToken: true }),
    ]);
    expect(JSON.stringify(listed)).not.toContain('sekret');
  });

  it('refuses to start on a corrupt profiles file rather than overwrite it', async () => {
    const file = path.join(configDir, 'profiles.json');
    await writeFile(file, '{"version":1,"profiles":[{"name":1}]}');
    const reopened = await Hub.create({ configDir, appInfo: { version: 't', mode: 'web', platform: 'linux' }, clock: { nowMs: () => Date.now() }, logger });
    expect(reopened.ok).toBe(false);
    if (!reopened.ok) expect(reopened.error.code).toBe('profiles_corrupt');
    expect(await readFile(file, 'utf8')).toContain('"name":1');
  });

  it('marks a link connected with its node id once the agent says hello and sends status', async () => {
    const agent = await startFakeAgent('viewer', (socket) => {
      socket.emit('agent:hello', hello);
      const timer = setInterval(() => socket.emit('status:batch', [{ atMs: Date.now(), status: validStatus() }]), 50);
      socket.on('disconnect', () => clearInterval(timer));
    });
    agents.push(agent);
    const snapshots: HubSnapshot[] = [];
    hub.subscribe((snapshot) => snapshots.push(snapshot));
    const id = await connectTo(agent.endpoint, 'viewer');
    const cluster = await until(() => {
      const latest = latestCluster(snapshots, id);
      return latest?.links[0]?.state === 'connected' ? latest : undefined;
    });
    expect(cluster.clusterId).toBe('demo');
    expect(cluster.links[0]?.nodeId).toBe('n1');
  });

  it('marks a link stale when status stops arriving while the socket stays open', async () => {
    const agent = await startFakeAgent('viewer', (socket) => socket.emit('agent:hello', hello));
    agents.push(agent);
    const snapshots: HubSnapshot[] = [];
    hub.subscribe((snapshot) => snapshots.push(snapshot));
    const id = await connectTo(agent.endpoint, 'viewer');
    await until(() => (latestCluster(snapshots, id)?.links[0]?.state === 'stale' ? true : undefined));
  });

  it('shows a refused link with the reason when the token is wrong', async () => {
    const agent = await startFakeAgent('right', () => {});
    agents.push(agent);
    const snapshots: HubSnapshot[] = [];
    hub.subscribe((snapshot) => snapshots.push(snapshot));
    const id = await connectTo(agent.endpoint, 'wrong');
    const link = await until(() => {
      const candidate = latestCluster(snapshots, id)?.links[0];
      return candidate?.state === 'refused' ? candidate : undefined;
    });
    expect(link.detail).toContain('unauthorized');
  });

  it('drops a malformed status batch with a logged reason that names the field', async () => {
    const agent = await startFakeAgent('viewer', (socket) => {
      socket.emit('agent:hello', hello);
      socket.emit('status:batch', [{ atMs: 1, status: { ...validStatus(), commitIndex: -4 } }]);
    });
    agents.push(agent);
    await connectTo(agent.endpoint, 'viewer');
    await until(() => (logger.warnings.length > 0 ? true : undefined));
    expect(logger.warnings[0]).toContain('status.0.status.commitIndex');
  });

  it('pushes at most 30 snapshots a second however many messages arrive', async () => {
    const agent = await startFakeAgent('viewer', (socket) => {
      socket.emit('agent:hello', hello);
      for (let i = 0; i < 500; i += 1) socket.emit('status:batch', [{ atMs: i, status: validStatus() }]);
    });
    agents.push(agent);
    const pushTimes: number[] = [];
    hub.subscribe(() => pushTimes.push(Date.now()));
    await connectTo(agent.endpoint, 'viewer');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (let i = 1; i < pushTimes.length; i += 1) {
      expect(pushTimes[i]! - pushTimes[i - 1]!).toBeGreaterThanOrEqual(Math.floor(1000 / 30) - 1);
    }
    expect(pushTimes.length).toBeLessThanOrEqual(32);
  });
});

describe('profile edits', () => {
  let configDir: string;
  let hub: Hub;

  beforeEach(async () => {
    configDir = await mkdtemp(path.join(os.tmpdir(), 'qs-hub-edit-'));
    const created = await Hub.create({ configDir, appInfo: { version: 't', mode: 'web', platform: 'linux' }, clock: { nowMs: () => Date.now() }, logger: recordingLogger() });
    if (!created.ok) throw new Error(created.error.message);
    hub = created.data;
  });

  afterEach(async () => {
    hub.close();
    await rm(configDir, { recursive: true, force: true });
  });

  it('changes name, endpoints and thresholds, keeps the token it was not given, and refuses a taken name', async () => {
    const first = await hub.request('profiles:add', { name: 'prod', endpoints: ['10.0.0.1:7401'], token: 'sekret' });
    await hub.request('profiles:add', { name: 'staging', endpoints: ['10.0.0.2:7401'], token: 'other' });
    const id = (first as { ok: true; data: { id: string } }).data.id;
    const edited = await hub.request('profiles:update', { id, name: 'production', endpoints: ['10.0.0.1:7401', '10.0.0.3:7401'], thresholds: { followerLagEntries: 50 } });
    expect(edited).toMatchObject({ ok: true, data: { name: 'production', endpoints: ['10.0.0.1:7401', '10.0.0.3:7401'], hasToken: true, thresholds: { followerLagEntries: 50 } } });
    const stored = JSON.parse(await readFile(path.join(configDir, 'profiles.json'), 'utf8')) as { profiles: Array<{ name: string; token: string }> };
    expect(stored.profiles.find((profile) => profile.name === 'production')?.token).toBe('sekret');
    const taken = await hub.request('profiles:update', { id, name: 'staging' });
    expect(taken).toMatchObject({ ok: false, error: { code: 'duplicate_name' } });
    const absurd = await hub.request('profiles:update', { id, thresholds: { followerLagMs: -5 } });
    expect(absurd.ok).toBe(false);
  });

  it('applies new lag thresholds to a connected cluster', async () => {
    const agent = await startFakeAgent('viewer', (socket) => {
      socket.emit('agent:hello', hello);
      socket.emit('status:batch', [{ atMs: Date.now(), status: validStatus() }]);
    });
    try {
      const added = await hub.request('profiles:add', { name: 'c', endpoints: [agent.endpoint], token: 'viewer' });
      const id = (added as { ok: true; data: { id: string } }).data.id;
      await hub.request('cluster:connect', { profileId: id });
      await hub.request('profiles:update', { id, thresholds: { followerLagEntries: 7, followerLagMs: 900 } });
      const thresholds = await until(() => hub.snapshot().clusters.find((cluster) => cluster.profileId === id)?.model?.lagThresholds);
      expect(thresholds).toMatchObject({ entries: 7, ms: 900 });
    } finally {
      await agent.close();
    }
  });
});
