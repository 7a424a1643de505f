import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect } from 'socket.io-client';
import { get, getWithRetry, httpJson, put, putWithRetry, sleep, startTestCluster, type TestCluster } from './harness';

/**
 * A real 3-node Raft cluster: three agent processes on loopback talking TCP,
 * with WALs on disk. The tests run in order and share the cluster.
 */
describe('a 3-node cluster of real agents', () => {
  let cluster: TestCluster;
  const acknowledged = new Map<string, string>();

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3, allowDrills: true });
    await cluster.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  async function acknowledgedWrite(key: string, value: string): Promise<void> {
    await putWithRetry(cluster, key, value);
    acknowledged.set(key, value);
  }

  async function expectAllAcknowledgedWrites(through: string): Promise<void> {
    for (const [key, value] of acknowledged) {
      const answer = await getWithRetry(cluster.http(through), key);
      expect(answer.status, `${key} through ${through}`).toBe(200);
      expect(answer.body.value).toBe(value);
    }
  }

  it('accepts writes through every node and serves linearizable reads from every node', async () => {
    for (const id of cluster.ids()) {
      const answer = await put(cluster.http(id), `k-${id}`, `v-${id}`);
      expect(answer.status).toBe(200);
      expect(answer.body.index).toBeGreaterThan(0);
      acknowledged.set(`k-${id}`, `v-${id}`);
    }
    for (const id of cluster.ids()) await expectAllAcknowledgedWrites(id);
  });

  it('answers 404 for a missing key, 409 for a failed compare-and-set, and 200 for a matching one', async () => {
    const base = cluster.http('n1');
    expect((await get(base, 'absent')).status).toBe(404);
    await acknowledgedWrite('cas-key', 'one');
    const refused = await httpJson(`${base}/v1/kv/cas-key/cas`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'zero', to: 'two' }) });
    expect(refused.status).toBe(409);
    expect(refused.body.current).toBe('one');
    const accepted = await httpJson(`${base}/v1/kv/cas-key/cas`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'one', to: 'two' }) });
    expect(accepted.status).toBe(200);
    acknowledged.set('cas-key', 'two');
    const deleted = await httpJson(`${base}/v1/kv/cas-key`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(deleted.body.deleted).toBe(true);
    acknowledged.delete('cas-key');
    expect((await get(base, 'cas-key')).status).toBe(404);
  });

  it('refuses malformed, oversized and unauthorized requests with clear errors', async () => {
    const base = cluster.http('n2');
    const malformed = await httpJson(`${base}/v1/kv/x`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"value": 5}' });
    expect(malformed.status).toBe(400);
    expect(JSON.stringify(malformed.body)).toContain('body.value');
    const oversized = await httpJson(`${base}/v1/kv/x`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'x'.repeat(400_000) }) });
    expect(oversized.status).toBe(413);
    const noToken = await httpJson(`${base}/v1/admin/transfer-leadership`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"to":"n1"}' });
    expect(noToken.status).toBe(401);
    const viewer = await httpJson(`${base}/v1/admin/transfer-leadership`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.cluster.file.viewerToken}` },
      body: '{"to":"n1"}',
    });
    expect(viewer.status).toBe(403);
    expect((await get(base, 'x')).status).toBe(404);
  });

  it('moves leadership through the admin API to the chosen follower', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
    const answer = await httpJson(`${cluster.http(leader)}/v1/admin/transfer-leadership`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.cluster.file.operatorToken}` },
      body: JSON.stringify({ to: target }),
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(await cluster.waitForLeader()).toBe(target);
    await acknowledgedWrite('after-transfer', 'yes');
  });

  it('holds writes that arrive during a planned transfer and commits them on the new leader: none fails', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
    const statuses: number[] = [];
    let writing = true;
    const writers = Array.from({ length: 4 }, async (_, writer) => {
      for (let i = 0; writing; i += 1) {
        const answer = await put(cluster.http(leader), `during-transfer-${writer}-${i}`, 'x');
        statuses.push(answer.status);
        if (answer.status === 200) acknowledged.set(`during-transfer-${writer}-${i}`, 'x');
      }
    });
    await sleep(100);
    const moved = await httpJson(`${cluster.http(leader)}/v1/admin/transfer-leadership`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.cluster.file.operatorToken}` },
      body: JSON.stringify({ to: target }),
    });
    await sleep(300);
    writing = false;
    await Promise.all(writers);
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    await expectAllAcknowledgedWrites(target);
  });

  it('refuses a transfer to an unknown node, with the reason', async () => {
    const leader = await cluster.waitForLeader();
    const answer = await httpJson(`${cluster.http(leader)}/v1/admin/transfer-leadership`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.cluster.file.operatorToken}` },
      body: JSON.stringify({ to: 'n9' }),
    });
    expect(answer.status).toBe(400);
    expect((answer.body.error as { code: string }).code).toBe('unknown_node');
  });

  it('refuses a transfer to a paused follower that cannot catch up, with the reason, and leadership stays', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
    await cluster.kill(target, 'SIGSTOP');
    try {
      // Past an election timeout without an answer, the target is out of reach of the leader.
      await sleep(400);
      const answer = await httpJson(`${cluster.http(leader)}/v1/admin/transfer-leadership`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.cluster.file.operatorToken}` },
        body: JSON.stringify({ to: target }),
      });
      expect(answer.status).toBe(409);
      const error = answer.body.error as { code: string; message: string };
      expect(['target_unreachable', 'target_lagging']).toContain(error.code);
      expect(error.message).toContain(target);
      expect(await cluster.waitForLeader()).toBe(leader);
    } finally {
      await cluster.kill(target, 'SIGCONT');
    }
  });

  it('moves leadership over socket.io with the operator token, and refuses the viewer token', async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.ids().find((id) => id !== leader) ?? 'n1';
    const viewer = connect(cluster.http(leader), { auth: { token: cluster.cluster.file.viewerToken }, transports: ['websocket'], reconnection: false });
    const refused = await viewer.timeout(10_000).emitWithAck('command:request', { type: 'leadership:transfer', to: target });
    viewer.close();
    expect(refused).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const operator = connect(cluster.http(leader), { auth: { token: cluster.cluster.file.operatorToken }, transports: ['websocket'], reconnection: false });
    const malformed = await operator.timeout(10_000).emitWithAck('command:request', { type: 'leadership:transfer', to: 42 });
    expect(malformed).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    const moved = await operator.timeout(10_000).emitWithAck('command:request', { type: 'leadership:transfer', to: target });
    operator.close();
    expect(moved).toMatchObject({ ok: true });
    expect(await cluster.waitForLeader()).toBe(target);
  });

  it('elects a new leader that serves writes after the leader is killed with SIGKILL, losing no acknowledged write', async () => {
    const leader = await cluster.waitForLeader();
    await acknowledgedWrite('before-kill', 'present');
    await cluster.kill(leader, 'SIGKILL');
    const successor = await cluster.waitForLeader({ excluding: [leader] });
    expect(successor).not.toBe(leader);
    await acknowledgedWrite('after-kill', 'present');
    await expectAllAcknowledgedWrites(successor);
    await cluster.restart(leader);
    // The restarted node catches up: a linearizable read through it sees everything.
    await expectAllAcknowledgedWrites(leader);
  });

  it('keeps serving while a follower is stopped with SIGSTOP, and the follower catches up after SIGCONT', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.ids().find((id) => id !== leader) ?? 'n1';
    await cluster.kill(follower, 'SIGSTOP');
    try {
      await acknowledgedWrite('during-stop', 'present');
    } finally {
      await cluster.kill(follower, 'SIGCONT');
    }
    await expectAllAcknowledgedWrites(follower);
  });

  it('survives the leader being stopped with SIGSTOP: the others elect a new leader, and the old one rejoins as a follower', async () => {
    const leader = await cluster.waitForLeader();
    await cluster.kill(leader, 'SIGSTOP');
    try {
      const successor = await cluster.waitForLeader({ excluding: [leader] });
      expect(successor).not.toBe(leader);
      await acknowledgedWrite('during-leader-stop', 'present');
    } finally {
      await cluster.kill(leader, 'SIGCONT');
    }
    await sleep(300);
    const status = await cluster.status(leader);
    expect(status?.role).toBe('follower');
    await expectAllAcknowledgedWrites(leader);
  });

  it('keeps all data across a full-cluster restart', async () => {
    for (const id of cluster.ids()) await cluster.kill(id, 'SIGKILL');
    for (const id of cluster.ids()) await cluster.restart(id);
    const leader = await cluster.waitForLeader();
    await expectAllAcknowledgedWrites(leader);
    await acknowledgedWrite('after-restart', 'present');
  });

  it('exposes Prometheus metrics', async () => {
    const leader = await cluster.waitForLeader();
    const response = await fetch(`${cluster.http(leader)}/metrics`);
    const text = await response.text();
    expect(text).toMatch(/quorumscope_has_leader\{[^}]*\} 1/);
    expect(text).toMatch(/quorumscope_is_leader\{[^}]*\} 1/);
    expect(text).toContain('quorumscope_follower_lag_entries');
    expect(text).toMatch(/quorumscope_fsync_duration_seconds_count\{[^}]*\} [1-9]/);
    expect(text).toMatch(/quorumscope_proposals_committed_total\{[^}]*\} [1-9]/);
  });
});
