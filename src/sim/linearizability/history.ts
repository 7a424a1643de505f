/**
 * A client history: every operation with the virtual times at which it was
 * invoked and answered. An operation that never got an answer is
 * indeterminate: it may or may not have taken effect, so its return time is
 * +Infinity and its output unknown (null).
 */
export interface HistoryOperation<Input, Output> {
  /** Unique within the history. */
  readonly id: number;
  readonly clientId: string;
  /** The partition the operation belongs to; operations on different keys are independent. */
  readonly key: string;
  readonly input: Input;
  /** Null while the outcome is unknown. */
  readonly output: Output | null;
  readonly callMs: number;
  /** `Infinity` when the operation is indeterminate. */
  readonly returnMs: number;
}

export function isIndeterminate<I, O>(operation: HistoryOperation<I, O>): boolean {
  return operation.output === null || operation.returnMs === Number.POSITIVE_INFINITY;
}

/**
 * A sequential specification of one partition (one key). `step` answers the
 * state after applying `input` in `state` if that agrees with `output`, or
 * null if the operation cannot have returned `output` there. With `output`
 * null (unknown), any outcome is accepted.
 */
export interface SequentialModel<State, Input, Output> {
  initialState(): State;
  step(state: State, input: Input, output: Output | null): { readonly state: State } | null;
  /** Equal states have equal keys; the search memoizes on it. */
  stateKey(state: State): string;
  /** True when an operation with unknown output can never change the state (a read); such operations are dropped. */
  isReadOnly(input: Input): boolean;
  /**
   * Optionally drops indeterminate operations that cannot help any order
   * (for a register: a write whose value nobody observed). Each one kept
   * doubles the configurations the search may visit.
   */
  pruneIndeterminate?(partition: readonly HistoryOperation<Input, Output>[]): HistoryOperation<Input, Output>[];
  describeOperation(input: Input, output: Output | null): string;
  describeState(state: State): string;
}
