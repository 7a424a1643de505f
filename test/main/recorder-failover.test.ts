import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../agent/runtime/harness';
import { Hub } from '../../src/main/hub/hub';
import type { ClusterModelSummary } from '../../src/shared/model';
import type { Incident, ReplayState } from '../../src/shared/protocol';
import { silentLogger } from '../../src/shared/logger';

/** A live failover in a real 3-node cluster (agents from the build), recorded by the hub, then replayed. */
let cluster: TestCluster;
let hub: Hub;
let configDir: string;

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: 3 });
  configDir = mkdtempSync(path.join(os.tmpdir(), 'qs-recorder-failover-'));
  const created = await Hub.create({ configDir, appInfo: { version: 't', mode: 'web', platform: 'linux' }, clock: { nowMs: () => Date.now() }, logger: silentLogger });
  if (!created.ok) throw new Error(created.error.message);
  hub = created.data;
}, 60_000);

afterAll(async () => {
  hub?.close();
  await cluster?.stop();
  rmSync(configDir, { recursive: true, force: true });
});

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!check()) throw new Error('timed out');
}

it('a recorded kill -9 failover replays with the old leader before, the new one after, and the lag values shown live', async () => {
  const added = await hub.request('profiles:add', { name: 'real', endpoints: cluster.ids().map((id) => cluster.http(id).replace('http://', '')), token: cluster.cluster.file.operatorToken });
  if (!added.ok) throw new Error(added.error.message);
  const profileId = (added.data as { id: string }).id;
  // What the renderer was shown live, push by push.
  const shown: ClusterModelSummary[] = [];
  const subscription = hub.subscribe((snapshot) => {
    const model = snapshot.clusters[0]?.model;
    if (model !== null && model !== undefined) shown.push(model);
  });
  expect((await hub.request('cluster:connect', { profileId })).ok).toBe(true);
  const oldLeader = await cluster.waitForLeader();
  await waitUntil(() => shown.at(-1)?.leader?.nodeId === oldLeader && (shown.at(-1)?.lagSeries.length ?? 0) > 0, 15_000);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const killedAtMs = Date.now();
  await cluster.kill(oldLeader, 'SIGKILL');
  const newLeader = await cluster.waitForLeader({ excluding: [oldLeader], timeoutMs: 20_000 });
  await waitUntil(() => shown.at(-1)?.leader?.nodeId === newLeader, 20_000);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  subscription.unsubscribe();

  const incidents = await hub.request('incidents:list', { source: profileId });
  if (!incidents.ok) throw new Error(incidents.error.message);
  const failover = (incidents.data as Incident[]).find((incident) => incident.trigger === 'failover');
  expect(failover?.title, JSON.stringify(incidents.data)).toContain(`${oldLeader} → ${newLeader}`);

  const started = await hub.request('replay:start', { source: profileId });
  expect(started.ok).toBe(true);
  const seek = async (atMs: number): Promise<ReplayState> => {
    const answer = await hub.request('replay:seek', { atMs });
    if (!answer.ok) throw new Error(answer.error.message);
    return answer.data as ReplayState;
  };
  const before = await seek(killedAtMs - 1_000);
  expect(before.model?.leader?.nodeId).toBe(oldLeader);
  const after = await seek(Date.now() - 500);
  expect(after.model?.leader?.nodeId).toBe(newLeader);

  // Every pushed summary with lag figures, from before and after the kill: replayed to its time, the same leader and lag values.
  const compared = shown.filter((summary, index) => index % 5 === 0 && summary.lagSeries.length > 0);
  expect(compared.some((summary) => summary.leader?.nodeId === oldLeader)).toBe(true);
  expect(compared.some((summary) => summary.leader?.nodeId === newLeader)).toBe(true);
  for (const live of compared) {
    const replayed = (await seek(live.atMs)).model;
    expect(replayed?.leader).toEqual(live.leader);
    expect(replayed?.lagSeries).toEqual(live.lagSeries);
    expect(replayed?.nodes).toEqual(live.nodes);
  }
  expect((await hub.request('replay:stop', null)).ok).toBe(true);
}, 120_000);
