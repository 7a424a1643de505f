/**
 * The sequential specification of one key of the replicated KV store: a
 * register holding a string or nothing, with put/get/delete/cas.
 */
import type { KvOperation, KvOutput } from '../../agent/kv';
import type { SequentialModel } from './history';

export type KvRegisterState = string | null;

function quote(value: string | null): string {
  return value === null ? 'absent' : JSON.stringify(value);
}

function stepKnown(state: KvRegisterState, input: KvOperation, output: KvOutput): KvRegisterState | undefined {
  if (output.type !== input.type) return undefined;
  switch (input.type) {
    case 'put':
      return input.value;
    case 'get':
      return output.type === 'get' && output.value === state ? state : undefined;
    case 'delete':
      return output.type === 'delete' && output.existed === (state !== null) ? null : undefined;
    case 'cas': {
      if (output.type !== 'cas') return undefined;
      const succeeds = state === input.expected;
      if (output.succeeded !== succeeds) return undefined;
      const after = succeeds ? input.value : state;
      return output.value === after ? after : undefined;
    }
  }
}

function stepUnknown(state: KvRegisterState, input: KvOperation): KvRegisterState {
  switch (input.type) {
    case 'put':
      return input.value;
    case 'get':
      return state;
    case 'delete':
      return null;
    case 'cas':
      return state === input.expected ? input.value : state;
  }
}

export const kvRegisterModel: SequentialModel<KvRegisterState, KvOperation, KvOutput> = {
  initialState: () => null,
  step(state, input, output) {
    if (output === null) return { state: stepUnknown(state, input) };
    const after = stepKnown(state, input, output);
    return after === undefined ? null : { state: after };
  },
  // A prefix keeps "absent" distinct from every string value.
  stateKey: (state) => (state === null ? 'a' : `v${state}`),
  isReadOnly: (input) => input.type === 'get',
  describeOperation(input, output) {
    const call =
      input.type === 'put'
        ? `put(${quote(input.value)})`
        : input.type === 'cas'
          ? `cas(${quote(input.expected)} → ${quote(input.value)})`
          : `${input.type}()`;
    if (output === null) return `${call} → ?`;
    switch (output.type) {
      case 'put':
        return `${call} → ok`;
      case 'get':
        return `${call} → ${quote(output.value)}`;
      case 'delete':
        return `${call} → ${output.existed ? 'existed' : 'absent'}`;
      case 'cas':
        return `${call} → ${output.succeeded ? 'succeeded' : 'failed'}, now ${quote(output.value)}`;
    }
  },
  describeState: quote,
};
