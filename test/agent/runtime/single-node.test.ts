import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpJson, putWithRetry, startTestCluster, type TestCluster } from './harness';

/** A cluster of one voter: every quorum is the node itself, so every answer is immediate. */
describe('a 1-node cluster of a real agent', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 1 });
    await cluster.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('answers a linearizable read at once (the lone voter confirms its read index inside the call)', async () => {
    await putWithRetry(cluster, 'solo', 'value');
    const startedAtMs = Date.now();
    const answer = await httpJson(`${cluster.http('n1')}/v1/kv/solo`);
    expect(answer.status).toBe(200);
    expect(answer.body.value).toBe('value');
    expect(Date.now() - startedAtMs).toBeLessThan(1_000);
  });
});
