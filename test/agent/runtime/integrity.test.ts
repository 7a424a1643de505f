import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import type { ClusterEvent, NodeStatus } from '../../../src/shared/protocol';
import { getWithRetry, putWithRetry, sleep, startTestCluster, type TestCluster } from './harness';

/**
 * The integrity engine in a real 3-node cluster: every corruption drill on a
 * follower's sealed segment (and its snapshot) is found by a scrub, raised as
 * an event over socket.io, repaired, and a second scrub comes back clean; a
 * node restarted on damaged files with no parity repairs from a peer before
 * its engine runs. No acknowledged write is lost.
 */
describe('integrity in a 3-node cluster of real agents', () => {
  let cluster: TestCluster;
  let target = '';
  let socket: Socket;
  const events: ClusterEvent[] = [];
  const acknowledged = new Map<string, string>();

  beforeAll(async () => {
    cluster = await startTestCluster({
      nodes: 3,
      allowDrills: true,
      agentArgs: ['--segment-bytes-max', '4096', '--snapshot-entries', '300', '--scrub-rate-bytes', String(64 * 1024 * 1024)],
    });
    const leader = await cluster.waitForLeader();
    target = cluster.ids().find((id) => id !== leader) ?? 'n2';
    // Enough writes for a dozen sealed segments and a snapshot on every node.
    for (let batch = 0; batch < 60; batch += 1) {
      await Promise.all(
        Array.from({ length: 8 }, async (_, slot) => {
          const key = `k${batch * 8 + slot}`;
          const value = `v${batch * 8 + slot}-${'x'.repeat(80)}`;
          await putWithRetry(cluster, key, value);
          acknowledged.set(key, value);
        }),
      );
    }
    socket = connect(cluster.http(target), { auth: { token: cluster.cluster.file.operatorToken }, transports: ['websocket'], reconnection: false });
    socket.on('cluster:event', (event: ClusterEvent) => events.push(event));
    await new Promise<void>((resolve) => socket.once('agent:hello', () => resolve()));
  }, 90_000);

  afterAll(async () => {
    socket?.close();
    await cluster?.stop();
  });

  async function waitForEvent(predicate: (event: ClusterEvent) => boolean, what: string, timeoutMs = 15_000): Promise<ClusterEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = events.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; events: ${events.map((event) => event.body.type).join(', ')}`);
      await sleep(25);
    }
  }

  async function scrubClean(): Promise<void> {
    events.length = 0;
    expect(await socket.timeout(10_000).emitWithAck('command:request', { type: 'scrub:start' })).toMatchObject({ ok: true });
    const completed = await waitForEvent((event) => event.body.type === 'scrub:completed', 'scrub:completed');
    expect(completed.body).toMatchObject({ corruptions: 0 });
  }

  for (const [target_, fault] of [
    ['segment', 'bit-flip'],
    ['segment', 'zero-sector'],
    ['segment', 'truncate'],
    ['segment', 'misdirect'],
    ['segment', 'stale'],
    ['snapshot', 'bit-flip'],
  ] as const) {
    it(`a ${fault} drill on a ${target_} is detected by a scrub, alerted over socket.io, repaired, and the next scrub is clean`, async () => {
      events.length = 0;
      const drill = await socket.timeout(10_000).emitWithAck('command:request', { type: 'drill:run', drill: { kind: 'corrupt', target: target_, fault, seed: 7 } });
      expect(drill, JSON.stringify(drill)).toMatchObject({ ok: true });
      expect(await socket.timeout(10_000).emitWithAck('command:request', { type: 'scrub:start' })).toMatchObject({ ok: true });
      const expectedKind = { 'bit-flip': target_ === 'segment' ? 'corruption' : undefined, 'zero-sector': 'corruption', truncate: 'corruption', misdirect: 'misdirected', stale: 'stale' }[fault];
      const detected = await waitForEvent((event) => event.body.type === 'corruption:detected', 'corruption:detected');
      expect(detected.body).toMatchObject({ detectedBy: 'scrub', ...(expectedKind === undefined ? {} : { kind: expectedKind }) });
      const repaired = await waitForEvent((event) => event.body.type === 'corruption:repaired', 'corruption:repaired');
      expect(repaired.body).toMatchObject({ repairedFrom: target_ === 'segment' ? 'parity' : 'snapshot' });
      await waitForEvent((event) => event.body.type === 'scrub:completed', 'scrub:completed');
      await scrubClean();
      const status = (await cluster.status(target)) as NodeStatus;
      expect(status.integrity).toMatchObject({ serving: true });
    }, 60_000);
  }

  it('a node restarted on a damaged segment with no parity left repairs it from a peer before its engine runs, and loses nothing', async () => {
    const dataDir = cluster.cluster.file.nodes.find((node) => node.id === target)?.dataDir ?? '';
    await cluster.kill(target, 'SIGTERM');
    const walDir = join(dataDir, 'wal');
    const names = (await readdir(walDir)).filter((name) => name.endsWith('.wal')).sort();
    const victim = join(walDir, names[Math.max(0, names.length - 3)] ?? '');
    const bytes = await readFile(victim);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x10;
    await writeFile(victim, bytes);
    await rm(join(dataDir, 'integrity', 'parity'), { recursive: true, force: true });
    await cluster.restart(target);
    const deadline = Date.now() + 20_000;
    let status = await cluster.status(target);
    while (status?.integrity?.serving !== true || status.role === 'offline') {
      if (Date.now() > deadline) throw new Error(`${target} did not repair: ${JSON.stringify(status?.integrity)} ${cluster.logs.slice(-8).join('\n')}`);
      await sleep(100);
      status = await cluster.status(target);
    }
    expect(status.integrity).toMatchObject({ serving: true, corruptionsFound: 1, corruptionsRepaired: 1 });
    for (const [key, value] of [...acknowledged].slice(-20)) {
      const answer = await getWithRetry(cluster.http(target), key);
      expect(answer.body.value).toBe(value);
    }
    for (const id of cluster.ids()) {
      for (const [key, value] of [...acknowledged].filter((_, position) => position % 16 === 0)) {
        expect((await getWithRetry(cluster.http(id), key)).body.value, `${key} through ${id}`).toBe(value);
      }
    }
  }, 60_000);
});
