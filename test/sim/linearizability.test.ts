import { describe, expect, it } from 'vitest';
import type { KvOperation, KvOutput } from '../../src/agent/kv';
import { createRandom } from '../../src/shared/random';
import { checkLinearizability, kvRegisterModel, type HistoryOperation } from '../../src/sim/linearizability';

type Operation = HistoryOperation<KvOperation, KvOutput>;
const never = Number.POSITIVE_INFINITY;

let nextId = 0;
function op(clientId: string, key: string, input: KvOperation, output: KvOutput | null, callMs: number, returnMs: number): Operation {
  nextId += 1;
  return { id: nextId, clientId, key, input, output, callMs, returnMs };
}
const put = (client: string, value: string, callMs: number, returnMs: number, key = 'x'): Operation =>
  op(client, key, { type: 'put', key, value }, { type: 'put' }, callMs, returnMs);
const get = (client: string, value: string | null, callMs: number, returnMs: number, key = 'x'): Operation =>
  op(client, key, { type: 'get', key }, { type: 'get', value }, callMs, returnMs);
const pendingPut = (client: string, value: string, callMs: number, key = 'x'): Operation =>
  op(client, key, { type: 'put', key, value }, null, callMs, never);

function verdictOf(history: Operation[]) {
  return checkLinearizability(history, kvRegisterModel);
}

describe('linearizability checker (Wing–Gong/Lowe search, per key)', () => {
  it('accepts a read that overlaps a write and returns either value', () => {
    expect(verdictOf([put('a', '1', 0, 10), get('b', '1', 5, 6), get('c', null, 4, 7)]).outcome).toBe('linearizable');
  });

  it('refuses a read that returns the old value after the write completed', () => {
    const verdict = verdictOf([put('a', '1', 0, 10), put('a', '2', 20, 30), get('b', '1', 40, 50)]);
    expect(verdict.outcome).toBe('not-linearizable');
  });

  it('refuses a new-old inversion: a read sees the new value and a later read sees the old one', () => {
    // Both reads overlap the write, so each alone is fine; in sequence they are not.
    const verdict = verdictOf([put('a', '0', 0, 1), put('a', '1', 10, 100), get('b', '1', 20, 30), get('c', '0', 40, 50)]);
    expect(verdict.outcome).toBe('not-linearizable');
  });

  it('accepts the classic concurrent-writes history where reads order the writes', () => {
    const history = [put('a', '1', 0, 50), put('b', '2', 0, 50), get('c', '2', 10, 60), get('d', '1', 55, 70)];
    expect(verdictOf(history).outcome).toBe('linearizable');
  });

  it('treats an operation without an answer as possibly applied, at any time after its call', () => {
    const history = [put('a', '1', 0, 10), pendingPut('b', '2', 15), get('c', '1', 20, 30), get('c', '2', 40, 50), get('c', '2', 60, 70)];
    expect(verdictOf(history).outcome).toBe('linearizable');
  });

  it('treats an operation without an answer as possibly never applied', () => {
    expect(verdictOf([put('a', '1', 0, 10), pendingPut('b', '2', 15), get('c', '1', 100, 110)]).outcome).toBe('linearizable');
  });

  it('does not let an indeterminate write take effect before it was called', () => {
    expect(verdictOf([get('c', '2', 0, 10), pendingPut('b', '2', 15)]).outcome).toBe('not-linearizable');
  });

  it('does not let an indeterminate write take effect twice', () => {
    const history = [pendingPut('b', '2', 0), get('c', '2', 10, 20), put('a', '3', 30, 40), get('c', '2', 50, 60)];
    expect(verdictOf(history).outcome).toBe('not-linearizable');
  });

  it('checks compare-and-set answers against the register', () => {
    const casOp = (expected: string | null, value: string, succeeded: boolean, now: string | null, callMs: number, returnMs: number) =>
      op('a', 'x', { type: 'cas', key: 'x', expected, value }, { type: 'cas', succeeded, value: now }, callMs, returnMs);
    expect(verdictOf([put('a', '1', 0, 10), casOp('1', '2', true, '2', 20, 30), get('b', '2', 40, 50)]).outcome).toBe('linearizable');
    expect(verdictOf([put('a', '1', 0, 10), casOp('0', '2', true, '2', 20, 30)]).outcome).toBe('not-linearizable');
    expect(verdictOf([put('a', '1', 0, 10), casOp('0', '2', false, '1', 20, 30)]).outcome).toBe('linearizable');
  });

  it('checks keys independently and names the key that fails, with the operation that cannot be placed', () => {
    const history = [put('a', '1', 0, 10, 'good'), get('b', '1', 20, 30, 'good'), put('a', '1', 0, 10, 'bad'), get('b', null, 20, 30, 'bad')];
    const verdict = verdictOf(history);
    expect(verdict.outcome).toBe('not-linearizable');
    if (verdict.outcome !== 'not-linearizable') return;
    expect(verdict.key).toBe('bad');
    expect(verdict.operationId).toBe(history[3]?.id);
    expect(verdict.explanation).toMatch(/key "bad"/);
    expect(verdict.explanation).toMatch(/get\(\) → absent/);
  });

  it('answers unknown rather than searching forever past its step budget', () => {
    // Many concurrent writes and a read that matches none of them force the whole search.
    const history: Operation[] = [];
    for (let index = 0; index < 12; index += 1) history.push(put(`w${index}`, `${index}`, 0, 100));
    history.push(get('r', 'missing', 0, 100));
    const verdict = checkLinearizability(history, kvRegisterModel, { searchStepsMax: 50 });
    expect(verdict.outcome).toBe('unknown');
  });
});

/**
 * A linearizable history by construction: each operation takes effect at a
 * point inside its interval on one real register per key; a few never answer.
 */
function generatedHistory(operations: number, keys: number, seed: number): Operation[] {
  const random = createRandom(seed);
  const registers = new Map<string, string | null>();
  const history: Operation[] = [];
  const clients = 16;
  const clientFreeAtMs = new Array<number>(clients).fill(0);
  const points: { atMs: number; index: number }[] = [];
  const drafts: { clientId: string; key: string; input: KvOperation; callMs: number; returnMs: number; pointMs: number }[] = [];
  for (let index = 0; index < operations; index += 1) {
    const client = random.int(0, clients - 1);
    const callMs = (clientFreeAtMs[client] as number) + random.int(0, 3);
    const pointMs = callMs + random.int(0, 10) + random.next();
    const returnMs = pointMs + random.int(0, 10);
    clientFreeAtMs[client] = returnMs + 1;
    const key = `k${random.int(0, keys - 1)}`;
    const roll = random.next();
    const value = `v${index}`;
    const input: KvOperation =
      roll < 0.4 ? { type: 'get', key } : roll < 0.75 ? { type: 'put', key, value } : roll < 0.85 ? { type: 'delete', key } : { type: 'cas', key, expected: random.chance(0.5) ? null : `v${random.int(0, index)}`, value };
    drafts.push({ clientId: `c${client}`, key, input, callMs, returnMs, pointMs });
    points.push({ atMs: pointMs, index });
  }
  points.sort((left, right) => left.atMs - right.atMs);
  const outputs = new Array<KvOutput>(operations);
  for (const { index } of points) {
    const draft = drafts[index]!;
    const state = registers.get(draft.key) ?? null;
    const input = draft.input;
    if (input.type === 'get') outputs[index] = { type: 'get', value: state };
    else if (input.type === 'put') {
      registers.set(draft.key, input.value);
      outputs[index] = { type: 'put' };
    } else if (input.type === 'delete') {
      registers.set(draft.key, null);
      outputs[index] = { type: 'delete', existed: state !== null };
    } else {
      const succeeded = state === input.expected;
      if (succeeded) registers.set(draft.key, input.value);
      outputs[index] = { type: 'cas', succeeded, value: succeeded ? input.value : state };
    }
  }
  drafts.forEach((draft, index) => {
    // One in fifty writes never answers: it took effect, but the client cannot know.
    const lost = draft.input.type !== 'get' && random.chance(0.02);
    history.push({
      id: index,
      clientId: draft.clientId,
      key: draft.key,
      input: draft.input,
      output: lost ? null : (outputs[index] as KvOutput),
      callMs: draft.callMs,
      returnMs: lost ? never : draft.returnMs,
    });
  });
  return history;
}

describe('linearizability checker at scale', () => {
  it('decides a 10,000-operation history over 16 keys in under a second', () => {
    const history = generatedHistory(10_000, 16, 7);
    const startedMs = performance.now();
    const verdict = verdictOf(history);
    const elapsedMs = performance.now() - startedMs;
    expect(verdict.outcome).toBe('linearizable');
    expect(elapsedMs).toBeLessThan(1_000);
  });

  it('finds the one stale read planted in a 10,000-operation history', () => {
    const history = generatedHistory(10_000, 16, 8);
    // Plant a read, well after everything, of a value that was overwritten long ago.
    const firstPut = history.find((operation) => operation.input.type === 'put' && operation.key === 'k3' && operation.output !== null)!;
    const lastMs = Math.max(...history.filter((operation) => operation.returnMs !== never).map((operation) => operation.returnMs));
    const value = firstPut.input.type === 'put' ? firstPut.input.value : '';
    history.push({ id: 99_999, clientId: 'late', key: 'k3', input: { type: 'get', key: 'k3' }, output: { type: 'get', value }, callMs: lastMs + 1_000, returnMs: lastMs + 1_001 });
    const verdict = verdictOf(history);
    expect(verdict.outcome).toBe('not-linearizable');
    if (verdict.outcome === 'not-linearizable') expect(verdict.key).toBe('k3');
  });
});
