import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvOperation, KvOutput } from '../../../src/agent/kv';
import { checkLinearizability, kvRegisterModel, type HistoryOperation } from '../../../src/sim/linearizability';
import { httpJson, sleep, startTestCluster, type TestCluster } from './harness';

type Operation = HistoryOperation<KvOperation, KvOutput>;

const clientsCount = 5;
const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
const workloadMs = 7_000;
const requestTimeoutMs = 1_500;

/** Sends one operation and turns the HTTP answer into a history entry; anything but a definite answer is indeterminate. */
async function invoke(cluster: TestCluster, node: string, operation: KvOperation): Promise<{ output: KvOutput | null; failedCleanly: boolean }> {
  const base = `${cluster.http(node)}/v1/kv/${operation.key}`;
  const signal = AbortSignal.timeout(requestTimeoutMs);
  const json = { 'content-type': 'application/json' };
  try {
    switch (operation.type) {
      case 'put': {
        const answer = await httpJson(base, { method: 'PUT', headers: json, body: JSON.stringify({ value: operation.value }), signal });
        return answer.status === 200 ? { output: { type: 'put' }, failedCleanly: false } : { output: null, failedCleanly: certainlyNotApplied(answer.body) };
      }
      case 'get': {
        const answer = await httpJson(base, { signal });
        if (answer.status === 200) return { output: { type: 'get', value: answer.body.value as string }, failedCleanly: false };
        if (answer.status === 404) return { output: { type: 'get', value: null }, failedCleanly: false };
        return { output: null, failedCleanly: true };
      }
      case 'cas': {
        const answer = await httpJson(`${base}/cas`, { method: 'POST', headers: json, body: JSON.stringify({ from: operation.expected, to: operation.value }), signal });
        if (answer.status === 200) return { output: { type: 'cas', succeeded: true, value: operation.value }, failedCleanly: false };
        if (answer.status === 409) return { output: { type: 'cas', succeeded: false, value: (answer.body.current as string | null) ?? null }, failedCleanly: false };
        return { output: null, failedCleanly: certainlyNotApplied(answer.body) };
      }
      case 'delete':
        return { output: null, failedCleanly: false };
    }
  } catch (error) {
    // A refused connection never reached the node: the operation certainly did not happen.
    const code = ((error as { cause?: { code?: string } }).cause ?? {}).code;
    return { output: null, failedCleanly: code === 'ECONNREFUSED' };
  }
}

/**
 * Refusals that happen before the write is proposed, or after its log entry
 * was replaced by another: the write certainly did not take effect. A timeout,
 * a reset connection or a shutdown leaves it indeterminate.
 */
const notAppliedCodes = new Set(['no_leader', 'not_leader', 'not_ready', 'transferring', 'overloaded', 'dropped', 'not_serving']);
const errorCodes = new Map<string, number>();
function certainlyNotApplied(body: Record<string, unknown>): boolean {
  const code = (body.error as { code?: string } | undefined)?.code ?? 'none';
  errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
  return notAppliedCodes.has(code);
}

async function runClient(cluster: TestCluster, client: number, history: Operation[], nextId: { value: number }, untilMs: number): Promise<void> {
  let step = 0;
  while (performance.now() < untilMs) {
    step += 1;
    const key = keys[(client + step) % keys.length] ?? 'a';
    const ids = cluster.ids();
    const node = ids[(client + step) % ids.length] ?? 'n1';
    const roll = (client * 31 + step * 17) % 10;
    const operation: KvOperation =
      roll < 4 ? { type: 'get', key } : roll < 8 ? { type: 'put', key, value: `c${client}-${step}` } : { type: 'cas', key, expected: `c${(client + 1) % clientsCount}-${step - 1}`, value: `c${client}-${step}-cas` };
    const callMs = performance.now();
    const { output, failedCleanly } = await invoke(cluster, node, operation);
    const returnMs = performance.now();
    if (failedCleanly) {
      await sleep(20);
      continue;
    }
    history.push({ id: nextId.value++, clientId: `c${client}`, key, input: operation, output, callMs, returnMs: output === null ? Number.POSITIVE_INFINITY : returnMs });
    // An indeterminate client is retired, as Jepsen does: it may still be in flight.
    if (output === null) return;
  }
}

describe('linearizability of a real cluster under faults', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ nodes: 3 });
    await cluster.waitForLeader();
  }, 30_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('keeps the history of concurrent clients linearizable through a leader kill, a restart and a paused follower', async () => {
    const history: Operation[] = [];
    const nextId = { value: 0 };
    const untilMs = performance.now() + workloadMs;
    const faults = (async () => {
      await sleep(1_200);
      const leader = await cluster.waitForLeader();
      await cluster.kill(leader, 'SIGKILL');
      await sleep(1_500);
      await cluster.restart(leader);
      await sleep(800);
      const current = await cluster.waitForLeader();
      const follower = cluster.ids().find((id) => id !== current) ?? 'n1';
      await cluster.kill(follower, 'SIGSTOP');
      await sleep(1_200);
      await cluster.kill(follower, 'SIGCONT');
    })();
    // Each client slot restarts with a fresh identity when its previous incarnation is retired.
    const clients = Array.from({ length: clientsCount }, async (_, client) => {
      let incarnation = 0;
      while (performance.now() < untilMs) {
        await runClient(cluster, client + incarnation * clientsCount, history, nextId, untilMs);
        incarnation += 1;
      }
    });
    await Promise.all([faults, ...clients]);

    const definite = history.filter((operation) => operation.output !== null);
    const indeterminate = history.length - definite.length;
    console.log(`history: ${history.length} operations, ${indeterminate} indeterminate; errors ${JSON.stringify([...errorCodes])}`);
    expect(definite.length).toBeGreaterThan(100);
    expect(definite.some((operation) => operation.input.type === 'put')).toBe(true);
    const verdict = checkLinearizability(history, kvRegisterModel);
    expect(verdict.outcome, JSON.stringify(verdict)).toBe('linearizable');
  }, 60_000);
});
