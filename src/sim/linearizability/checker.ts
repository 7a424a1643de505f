/**
 * Linearizability checking by the Wing–Gong search with Lowe's memoization
 * ("Testing for linearizability", 2017), as Porcupine does it: the history is a
 * doubly linked list of call and return events in time order; the search
 * linearizes some call that is still minimal, lifts it out of the list and
 * backtracks when it meets a return whose call it could not linearize. A
 * cache of (set of linearized operations, model state) prunes configurations
 * already explored. The history is first split per key (P-compositionality:
 * a history of independent keys is linearizable iff each key's is).
 *
 * An indeterminate operation returns at +Infinity: its return event sorts
 * last, so it may be linearized anywhere after its call, including after
 * every completed operation, which is the same as never taking effect.
 */
import { isIndeterminate, type HistoryOperation, type SequentialModel } from './history';

/** The search gives up on a partition after this many steps and answers `unknown`. */
export const linearizabilitySearchStepsMaxDefault = 20_000_000;
/** How many of the last linearized operations an explanation shows. */
const explanationContextOperationsMax = 6;

export interface LinearizabilityOptions {
  readonly searchStepsMax?: number;
}

export interface PartitionFailure {
  readonly key: string;
  /** The operation that could not be placed, with every order of those before it tried. */
  readonly operationId: number;
  readonly explanation: string;
}

export type LinearizabilityVerdict =
  | { readonly outcome: 'linearizable'; readonly partitions: number; readonly operations: number }
  | ({ readonly outcome: 'not-linearizable' } & PartitionFailure)
  /** The search ran out of steps on `key` before deciding. */
  | { readonly outcome: 'unknown'; readonly key: string; readonly explanation: string };

interface ListNode {
  readonly isCall: boolean;
  /** Dense index of the operation inside its partition. */
  readonly operation: number;
  /** The return node of a call node; null on return nodes. */
  match: ListNode | null;
  previous: ListNode | null;
  next: ListNode | null;
}

interface TimedEvent {
  readonly timeMs: number;
  readonly isCall: boolean;
  readonly operation: number;
}

export function checkLinearizability<State, Input, Output>(
  history: readonly HistoryOperation<Input, Output>[],
  model: SequentialModel<State, Input, Output>,
  options: LinearizabilityOptions = {},
): LinearizabilityVerdict {
  const searchStepsMax = options.searchStepsMax ?? linearizabilitySearchStepsMaxDefault;
  const partitions = partitionByKey(history, model);
  let operations = 0;
  for (const [key, partition] of partitions) {
    operations += partition.length;
    const verdict = checkPartition(key, partition, model, searchStepsMax);
    if (verdict !== null) return verdict;
  }
  return { outcome: 'linearizable', partitions: partitions.size, operations };
}

/** Groups by key in a deterministic order and drops reads whose answer is unknown: they constrain nothing. */
function partitionByKey<State, Input, Output>(
  history: readonly HistoryOperation<Input, Output>[],
  model: SequentialModel<State, Input, Output>,
): Map<string, HistoryOperation<Input, Output>[]> {
  const partitions = new Map<string, HistoryOperation<Input, Output>[]>();
  const keys = [...new Set(history.map((operation) => operation.key))].sort();
  for (const key of keys) partitions.set(key, []);
  for (const operation of history) {
    if (operation.returnMs < operation.callMs) {
      throw new RangeError(`history: operation ${operation.id} returns at ${operation.returnMs} before its call at ${operation.callMs}`);
    }
    if (isIndeterminate(operation) && model.isReadOnly(operation.input)) continue;
    partitions.get(operation.key)?.push(operation);
  }
  if (model.pruneIndeterminate !== undefined) {
    for (const [key, partition] of partitions) partitions.set(key, model.pruneIndeterminate(partition));
  }
  return partitions;
}

/** Call and return events in time order; at equal times calls come first, which treats the operations as concurrent. */
function buildEventList<I, O>(partition: readonly HistoryOperation<I, O>[]): ListNode {
  const events: TimedEvent[] = [];
  partition.forEach((operation, index) => {
    const returnMs = isIndeterminate(operation) ? Number.POSITIVE_INFINITY : operation.returnMs;
    events.push({ timeMs: operation.callMs, isCall: true, operation: index });
    events.push({ timeMs: returnMs, isCall: false, operation: index });
  });
  events.sort(
    (left, right) =>
      left.timeMs - right.timeMs || Number(right.isCall) - Number(left.isCall) || left.operation - right.operation,
  );
  const head: ListNode = { isCall: false, operation: -1, match: null, previous: null, next: null };
  const calls: (ListNode | undefined)[] = new Array<ListNode | undefined>(partition.length);
  let tail = head;
  for (const event of events) {
    const node: ListNode = { isCall: event.isCall, operation: event.operation, match: null, previous: tail, next: null };
    tail.next = node;
    tail = node;
    if (event.isCall) calls[event.operation] = node;
    else {
      const call = calls[event.operation];
      if (call !== undefined) call.match = node;
    }
  }
  return head;
}

function lift(call: ListNode): void {
  const ret = call.match as ListNode;
  (call.previous as ListNode).next = call.next;
  (call.next as ListNode).previous = call.previous;
  (ret.previous as ListNode).next = ret.next;
  if (ret.next !== null) ret.next.previous = ret.previous;
}

function unlift(call: ListNode): void {
  const ret = call.match as ListNode;
  (ret.previous as ListNode).next = ret;
  if (ret.next !== null) ret.next.previous = ret;
  (call.previous as ListNode).next = call;
  (call.next as ListNode).previous = call;
}

/** Zobrist keys: the hash of a set of operations is the XOR of theirs, updated in O(1) per change. */
function zobristKeys(count: number): Uint32Array {
  const keys = new Uint32Array(count);
  let state = 0x2545f491;
  for (let index = 0; index < count; index += 1) {
    // xorshift32: any fixed sequence of well-mixed words will do; it keeps the checker deterministic.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    keys[index] = state >>> 0;
  }
  return keys;
}

class ConfigurationCache {
  private readonly buckets = new Map<number, { bits: Uint32Array; stateId: number }[]>();

  /** Adds the configuration; answers false if it was already there. */
  add(hash: number, bits: Uint32Array, stateId: number): boolean {
    const key = (hash ^ Math.imul(stateId + 1, 0x9e3779b1)) >>> 0;
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.buckets.set(key, [{ bits: bits.slice(), stateId }]);
      return true;
    }
    for (const seen of bucket) {
      if (seen.stateId === stateId && sameBits(seen.bits, bits)) return false;
    }
    bucket.push({ bits: bits.slice(), stateId });
    return true;
  }
}

function sameBits(left: Uint32Array, right: Uint32Array): boolean {
  for (let index = 0; index < left.length; index += 1) if (left[index] !== right[index]) return false;
  return true;
}

interface Frame<State> {
  readonly call: ListNode;
  readonly stateBefore: State;
}

function checkPartition<State, Input, Output>(
  key: string,
  partition: readonly HistoryOperation<Input, Output>[],
  model: SequentialModel<State, Input, Output>,
  searchStepsMax: number,
): LinearizabilityVerdict | null {
  const head = buildEventList(partition);
  const zobrist = zobristKeys(partition.length);
  const bits = new Uint32Array(Math.ceil(partition.length / 32) + 1);
  const stateIds = new Map<string, number>();
  const stateId = (state: State): number => {
    const stateKey = model.stateKey(state);
    let id = stateIds.get(stateKey);
    if (id === undefined) {
      id = stateIds.size;
      stateIds.set(stateKey, id);
    }
    return id;
  };
  const cache = new ConfigurationCache();
  const stack: Frame<State>[] = [];
  let best: { linearized: number[]; state: State } = { linearized: [], state: model.initialState() };
  let state = model.initialState();
  let hash = 0;
  let entry = head.next;
  let steps = 0;

  while (head.next !== null) {
    steps += 1;
    if (steps > searchStepsMax) {
      return {
        outcome: 'unknown',
        key,
        explanation: `key ${JSON.stringify(key)}: gave up after ${searchStepsMax} search steps over ${partition.length} operations`,
      };
    }
    if (entry === null) throw new Error('linearizability: walked past the end of the event list');
    if (entry.isCall) {
      const operation = partition[entry.operation] as HistoryOperation<Input, Output>;
      const stepped = model.step(state, operation.input, operation.output);
      if (stepped !== null) {
        const word = entry.operation >>> 5;
        const mask = 1 << (entry.operation & 31);
        bits[word] = ((bits[word] as number) | mask) >>> 0;
        const nextHash = (hash ^ (zobrist[entry.operation] as number)) >>> 0;
        if (cache.add(nextHash, bits, stateId(stepped.state))) {
          stack.push({ call: entry, stateBefore: state });
          state = stepped.state;
          hash = nextHash;
          lift(entry);
          if (stack.length > best.linearized.length) {
            best = { linearized: stack.map((frame) => frame.call.operation), state };
          }
          entry = head.next;
          continue;
        }
        bits[word] = ((bits[word] as number) & ~mask) >>> 0;
      }
      entry = entry.next;
      continue;
    }
    // A return event: its call was not linearized before it, so this branch is dead.
    const frame = stack.pop();
    if (frame === undefined) return explainFailure(key, partition, model, best);
    state = frame.stateBefore;
    const operationIndex = frame.call.operation;
    hash = (hash ^ (zobrist[operationIndex] as number)) >>> 0;
    bits[operationIndex >>> 5] = ((bits[operationIndex >>> 5] as number) & ~(1 << (operationIndex & 31))) >>> 0;
    unlift(frame.call);
    entry = frame.call.next;
  }
  return null;
}

/**
 * Names the operation that blocked the longest partial linearization found:
 * of those left out, the one that returned first must come next, and no order
 * of the earlier ones leaves a state in which its answer is possible.
 */
function explainFailure<State, Input, Output>(
  key: string,
  partition: readonly HistoryOperation<Input, Output>[],
  model: SequentialModel<State, Input, Output>,
  best: { linearized: number[]; state: State },
): LinearizabilityVerdict {
  const placed = new Set(best.linearized);
  let blocking: HistoryOperation<Input, Output> | null = null;
  for (const [index, operation] of partition.entries()) {
    if (placed.has(index)) continue;
    if (blocking === null || operation.returnMs < blocking.returnMs) blocking = operation;
  }
  const describe = (operation: HistoryOperation<Input, Output>): string =>
    `#${operation.id} ${operation.clientId} ${model.describeOperation(operation.input, operation.output)} ` +
    `[${operation.callMs}, ${operation.returnMs === Number.POSITIVE_INFINITY ? '∞' : operation.returnMs}]`;
  const context = best.linearized
    .slice(-explanationContextOperationsMax)
    .map((index) => describe(partition[index] as HistoryOperation<Input, Output>));
  const blockingText = blocking === null ? 'none' : describe(blocking);
  const explanation =
    `key ${JSON.stringify(key)}: no order of its ${partition.length} operations is legal. ` +
    `The longest legal prefix places ${best.linearized.length} operations and ends in state ${model.describeState(best.state)}` +
    (context.length > 0 ? ` (last: ${context.join('; ')})` : '') +
    `; then ${blockingText} cannot be placed.`;
  return { outcome: 'not-linearizable', key, operationId: blocking?.id ?? -1, explanation };
}
