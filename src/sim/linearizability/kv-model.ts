/**
 * The sequential specification of one key of the replicated KV store: a
 * register holding a string or nothing, with put/get/delete/cas.
 */
import type { KvOperation, KvOutput } from '../../agent/kv';
import { isIndeterminate, type HistoryOperation, type SequentialModel } from './history';

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

type KvHistoryOperation = HistoryOperation<KvOperation, KvOutput>;

/** Values some completed operation saw, or a compare-and-set expected. */
function referencedValues(partition: readonly KvHistoryOperation[]): Set<string> {
  const values = new Set<string>();
  for (const operation of partition) {
    if (operation.input.type === 'cas' && operation.input.expected !== null) values.add(operation.input.expected);
    const output = operation.output;
    if (output !== null && (output.type === 'get' || output.type === 'cas') && output.value !== null) values.add(output.value);
  }
  return values;
}

/**
 * An indeterminate put or compare-and-set whose value nobody saw can only
 * matter by making the key non-empty, which only a delete answering
 * "existed" that returned after its call could need. Otherwise taking
 * effect never helps an order, so it may as well not have happened.
 */
function pruneUnobservedWrites(partition: readonly KvHistoryOperation[]): KvHistoryOperation[] {
  const referenced = referencedValues(partition);
  const existedReturnsMs = partition
    .filter((operation) => operation.output?.type === 'delete' && operation.output.existed)
    .map((operation) => operation.returnMs);
  const lastExistedReturnMs = existedReturnsMs.length === 0 ? Number.NEGATIVE_INFINITY : Math.max(...existedReturnsMs);
  return partition.filter((operation) => {
    if (!isIndeterminate(operation)) return true;
    const input = operation.input;
    if (input.type !== 'put' && input.type !== 'cas') return true;
    return referenced.has(input.value) || lastExistedReturnMs > operation.callMs;
  });
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
  pruneIndeterminate: pruneUnobservedWrites,
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
