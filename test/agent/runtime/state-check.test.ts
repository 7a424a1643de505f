import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import type { ClusterEvent } from '../../../src/shared/protocol';
import { get, putWithRetry, sleep, startTestCluster, type TestCluster } from './harness';

/**
 * Replica state-hash comparison through the log in a real 3-node cluster: the
 * leader proposes state-check entries, every replica hashes its key-value
 * state at that index and the replicas exchange hashes over the peer port.
 * Healthy replicas agree; a replica whose in-memory state was changed behind
 * the log's back (the `corrupt` drill with target `state`) is named as the
 * minority by every node within a bounded time and stops serving.
 */
const stateCheckIntervalMs = 200;
const detectionMsMax = 10_000;

describe('state-hash comparison in a 3-node cluster of real agents', () => {
  let cluster: TestCluster;
  let leader = '';
  let target = '';
  const sockets = new Map<string, Socket>();
  const events = new Map<string, ClusterEvent[]>();

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3, allowDrills: true, agentArgs: ['--state-check-interval-ms', String(stateCheckIntervalMs)] });
    leader = await cluster.waitForLeader();
    target = cluster.ids().find((id) => id !== leader) ?? 'n2';
    for (const id of cluster.ids()) {
      const socket = connect(cluster.http(id), { auth: { token: cluster.cluster.file.operatorToken }, transports: ['websocket'], reconnection: false });
      const seen: ClusterEvent[] = [];
      socket.on('cluster:event', (event: ClusterEvent) => seen.push(event));
      await new Promise<void>((resolve) => socket.once('agent:hello', () => resolve()));
      sockets.set(id, socket);
      events.set(id, seen);
    }
    for (let key = 0; key < 20; key += 1) await putWithRetry(cluster, `k${key}`, `v${key}`);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets.values()) socket.close();
    await cluster?.stop();
  });

  const divergences = (id: string) => (events.get(id) ?? []).filter((event) => event.body.type === 'corruption:detected' && event.body.kind === 'state-divergence');

  it('healthy replicas agree: several state checks pass without a finding', async () => {
    // Writes between checks, so the leader keeps proposing them (it skips a check when nothing was applied since the last).
    for (let round = 0; round < 8; round += 1) {
      await putWithRetry(cluster, `healthy${round}`, 'x');
      await sleep(stateCheckIntervalMs / 2);
    }
    for (const id of cluster.ids()) expect(divergences(id), id).toEqual([]);
    const status = await cluster.status(target);
    expect(status?.integrity).toMatchObject({ serving: true });
  }, 30_000);

  it('a replica whose state was changed behind the log is named as the minority by every node and stops serving', async () => {
    const drill = await sockets.get(target)?.timeout(10_000).emitWithAck('command:request', { type: 'drill:run', drill: { kind: 'corrupt', target: 'state', fault: 'bit-flip', seed: 3 } });
    expect(drill, JSON.stringify(drill)).toMatchObject({ ok: true });
    const startedMs = Date.now();
    let round = 0;
    // Bounded: writes keep state checks coming until every node reports, or the deadline passes.
    while (cluster.ids().some((id) => divergences(id).length === 0)) {
      if (Date.now() - startedMs > detectionMsMax) {
        throw new Error(`not every node named the minority within ${detectionMsMax} ms: ${cluster.ids().map((id) => `${id}: ${divergences(id).length}`).join(', ')}\n${cluster.logs.slice(-10).join('\n')}`);
      }
      await putWithRetry(cluster, `after${round}`, 'y').catch(() => undefined);
      round += 1;
      await sleep(50);
    }
    const detectedMs = Date.now() - startedMs;
    for (const id of cluster.ids()) {
      const finding = divergences(id)[0]?.body;
      expect(finding, id).toMatchObject({ type: 'corruption:detected', kind: 'state-divergence', detectedBy: 'state-hash' });
      if (finding?.type !== 'corruption:detected') continue;
      expect(finding.detail, id).toContain(`minority: ${target}`);
      // Only the corrupted replica is named.
      for (const other of cluster.ids().filter((candidate) => candidate !== target)) expect(finding.detail.startsWith(`minority: ${other}`), id).toBe(false);
    }
    expect(detectedMs).toBeLessThan(detectionMsMax);
    const status = await cluster.status(target);
    expect(status?.integrity).toMatchObject({ serving: false });
    expect(status?.integrity?.reason ?? '').toContain('state diverged');
    // It refuses reads rather than answer from divergent state; the majority keeps serving.
    const refused = await get(cluster.http(target), 'k1');
    expect(refused.status).toBe(503);
    for (const id of cluster.ids().filter((candidate) => candidate !== target)) expect((await cluster.status(id))?.integrity).toMatchObject({ serving: true });
  }, 30_000);
});
