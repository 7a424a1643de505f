import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeCommand, encodeCommand, KvStateMachine, type KvCommand, type KvResult } from '../../../src/agent/kv';

const put = (clientId: string, sequence: number, key: string, value: string): KvCommand => ({
  clientId,
  sequence,
  operation: { type: 'put', key, value },
});
const get = (clientId: string, sequence: number, key: string): KvCommand => ({ clientId, sequence, operation: { type: 'get', key } });
const cas = (clientId: string, sequence: number, key: string, expected: string | null, value: string): KvCommand => ({
  clientId,
  sequence,
  operation: { type: 'cas', key, expected, value },
});

function data(result: KvResult): unknown {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}`);
  return result.data;
}

describe('KvStateMachine sessions (exactly-once, Raft thesis §6.3)', () => {
  it('answers a retried command from the session without applying it again', () => {
    const machine = new KvStateMachine();
    machine.apply(1, put('c1', 1, 'k', 'from-c1'));
    machine.apply(2, put('c2', 1, 'k', 'from-c2'));
    const retry = machine.apply(3, put('c1', 1, 'k', 'from-c1'));
    expect(data(retry)).toEqual({ type: 'put' });
    expect(machine.read('k')).toBe('from-c2');
  });

  it('answers a retried compare-and-set with its first result even though the state changed since', () => {
    const machine = new KvStateMachine();
    const first = machine.apply(1, cas('c1', 1, 'k', null, 'v1'));
    const retry = machine.apply(2, cas('c1', 1, 'k', null, 'v1'));
    expect(data(first)).toEqual({ type: 'cas', succeeded: true, value: 'v1' });
    expect(retry).toEqual(first);
  });

  it('refuses a sequence number older than the last applied one', () => {
    const machine = new KvStateMachine();
    machine.apply(1, put('c1', 1, 'k', 'a'));
    machine.apply(2, put('c1', 2, 'k', 'b'));
    const stale = machine.apply(3, put('c1', 1, 'k', 'a'));
    expect(stale.ok).toBe(false);
    if (!stale.ok) expect(stale.error.code).toBe('stale_sequence');
    expect(machine.read('k')).toBe('b');
  });

  it('evicts the least recently used session beyond sessionsMax and then refuses that client rather than risk a double apply', () => {
    const machine = new KvStateMachine({ sessionsMax: 2 });
    machine.apply(1, put('c1', 1, 'k', 'a'));
    machine.apply(2, put('c2', 1, 'k', 'b'));
    machine.apply(3, put('c3', 1, 'k', 'c'));
    expect(machine.sessionCount).toBe(2);
    const afterEviction = machine.apply(4, put('c1', 2, 'k', 'd'));
    expect(afterEviction.ok).toBe(false);
    if (!afterEviction.ok) expect(afterEviction.error.code).toBe('session_expired');
    expect(machine.read('k')).toBe('c');
  });

  it('refuses to apply entries out of order or with a gap', () => {
    const machine = new KvStateMachine();
    machine.apply(1, put('c1', 1, 'k', 'a'));
    expect(() => machine.apply(3, put('c1', 2, 'k', 'b'))).toThrow(/in order/);
    expect(() => machine.apply(1, put('c1', 2, 'k', 'b'))).toThrow(/in order/);
  });
});

describe('KvStateMachine commands outside a session', () => {
  it('applies sequence-0 commands in any order without remembering a session', () => {
    const machine = new KvStateMachine();
    machine.apply(1, put('node-a', 0, 'k', 'first'));
    machine.apply(2, put('node-a', 0, 'k', 'second'));
    expect(machine.read('k')).toBe('second');
    expect(machine.sessionCount).toBe(0);
    // A later sessioned command of the same client id still starts its session at 1.
    expect(data(machine.apply(3, put('node-a', 1, 'k', 'third')))).toEqual({ type: 'put' });
    expect(machine.sessionCount).toBe(1);
  });
});

describe('KvStateMachine operations', () => {
  it('sets a value by compare-and-set only when the current value equals the expected one', () => {
    const machine = new KvStateMachine();
    expect(data(machine.apply(1, cas('c1', 1, 'k', 'nope', 'x')))).toEqual({ type: 'cas', succeeded: false, value: null });
    expect(data(machine.apply(2, cas('c1', 2, 'k', null, 'x')))).toEqual({ type: 'cas', succeeded: true, value: 'x' });
    expect(data(machine.apply(3, cas('c1', 3, 'k', 'y', 'z')))).toEqual({ type: 'cas', succeeded: false, value: 'x' });
    expect(data(machine.apply(4, cas('c1', 4, 'k', 'x', 'z')))).toEqual({ type: 'cas', succeeded: true, value: 'z' });
    expect(machine.read('k')).toBe('z');
  });

  it('deletes a key and reports whether it existed; a get reads through the log', () => {
    const machine = new KvStateMachine();
    machine.apply(1, put('c1', 1, 'k', 'a'));
    expect(data(machine.apply(2, { clientId: 'c1', sequence: 2, operation: { type: 'delete', key: 'k' } }))).toEqual({ type: 'delete', existed: true });
    expect(data(machine.apply(3, { clientId: 'c1', sequence: 3, operation: { type: 'delete', key: 'k' } }))).toEqual({ type: 'delete', existed: false });
    expect(data(machine.apply(4, get('c1', 4, 'k')))).toEqual({ type: 'get', value: null });
  });

  it('skips entries that are not commands, keeping the applied index', () => {
    const machine = new KvStateMachine();
    machine.skip(1);
    machine.apply(2, put('c1', 1, 'k', 'a'));
    expect(machine.appliedIndex).toBe(2);
  });
});

describe('KvStateMachine snapshots', () => {
  it('restores from its snapshot to an equal state, sessions included', () => {
    const machine = new KvStateMachine();
    machine.apply(1, put('c1', 1, 'b', '2'));
    machine.apply(2, put('c2', 1, 'a', '1'));
    machine.apply(3, cas('c1', 2, 'a', '1', '3'));
    const restored = KvStateMachine.restore(machine.snapshot());
    expect(restored.ok).toBe(true);
    if (!restored.ok) return;
    expect(restored.data.stateHash()).toBe(machine.stateHash());
    expect(restored.data.appliedIndex).toBe(3);
    expect(restored.data.read('a')).toBe('3');
    // The session survived: the retry is answered, not applied.
    expect(data(restored.data.apply(4, cas('c1', 2, 'a', '1', '3')))).toEqual({ type: 'cas', succeeded: true, value: '3' });
  });

  it('hashes equal states equally whatever the order the keys were written in', () => {
    const left = new KvStateMachine();
    const right = new KvStateMachine();
    left.apply(1, put('c', 1, 'x', '1'));
    left.apply(2, put('c', 2, 'y', '2'));
    right.apply(1, put('c', 1, 'y', '2'));
    right.apply(2, put('c', 2, 'x', '1'));
    expect(left.stateHash()).toBe(right.stateHash());
    right.apply(3, put('d', 1, 'x', 'other'));
    left.skip(3);
    expect(left.stateHash()).not.toBe(right.stateHash());
  });

  it('rejects a snapshot that is not one, naming the problem', () => {
    const garbage = KvStateMachine.restore(new Uint8Array([1, 2, 3]));
    expect(garbage.ok).toBe(false);
    if (!garbage.ok) expect(garbage.error.code).toBe('invalid_snapshot');
  });
});

describe('KV command encoding', () => {
  it('round-trips every operation through the binary encoding', () => {
    const commands: KvCommand[] = [
      put('c1', 1, 'k', 'v'),
      get('c1', 2, 'k'),
      { clientId: 'c1', sequence: 3, operation: { type: 'delete', key: 'k' } },
      cas('c1', 4, 'k', null, 'v'),
    ];
    for (const command of commands) expect(decodeCommand(encodeCommand(command))).toEqual({ ok: true, data: command });
  });

  it('encodes equal commands to equal bytes', () => {
    const reordered = { operation: { value: 'v', key: 'k', type: 'put' as const }, sequence: 1, clientId: 'c1' };
    expect(encodeCommand(reordered)).toEqual(encodeCommand(put('c1', 1, 'k', 'v')));
  });

  it('rejects empty input, an unknown format version and bytes that are not msgpack', () => {
    const empty = decodeCommand(new Uint8Array());
    const version = decodeCommand(new Uint8Array([9, 0x80]));
    const truncated = decodeCommand(encodeCommand(put('c1', 1, 'k', 'value')).subarray(0, 8));
    for (const result of [empty, version, truncated]) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('invalid_command');
    }
    if (!version.ok) expect(version.error.message).toMatch(/format version 9/);
  });

  it('rejects a well-formed message that is not a valid command and names the offending field', () => {
    // Built from commands the type system would refuse, as a hostile peer could send them.
    const negative = encodeCommand({ clientId: 'c1', sequence: -4, operation: { type: 'put', key: 'k', value: 'v' } } as KvCommand);
    const unknownOperation = encodeCommand({ clientId: 'c1', sequence: 1, operation: { type: 'get', key: '' } });
    const negativeResult = decodeCommand(negative);
    const emptyKeyResult = decodeCommand(unknownOperation);
    expect(negativeResult.ok).toBe(false);
    if (!negativeResult.ok) expect(negativeResult.error.message).toMatch(/command\.sequence/);
    expect(emptyKeyResult.ok).toBe(false);
    if (!emptyKeyResult.ok) expect(emptyKeyResult.error.message).toMatch(/command\.operation\.key/);
  });

  it('rejects an unknown operation type and unknown fields', () => {
    const raw = (value: unknown): Uint8Array => new Uint8Array([1, ...pack(value)]);
    const unknownType = decodeCommand(raw({ clientId: 'c1', sequence: 1, operation: { type: 'increment', key: 'k' } }));
    const extraField = decodeCommand(raw({ clientId: 'c1', sequence: 1, operation: { type: 'get', key: 'k' }, admin: true }));
    expect(unknownType.ok).toBe(false);
    expect(extraField.ok).toBe(false);
    if (!unknownType.ok) expect(unknownType.error.message).toMatch(/command\.operation\.type/);
    if (!extraField.ok) expect(extraField.error.message).toMatch(/admin/);
  });
});
