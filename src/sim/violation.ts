import type { InvariantName } from './invariants';

export type ViolationKind =
  | InvariantName
  | 'linearizability'
  /** Two replicas at one applied index hold different states. */
  | 'replica-divergence'
  /** The engine broke the `Ready` contract (gaps in entries, a snapshot going back...). */
  | 'storage-contract'
  /** The engine threw, or sent a message its own parser rejects. */
  | 'engine-error';

export interface SimViolation {
  readonly kind: ViolationKind;
  readonly message: string;
  readonly atMs: number;
  readonly step: number;
}

/** Thrown inside a run to stop it at the first violation; the run loop turns it into a result. */
export class ViolationError extends Error {
  constructor(
    readonly kind: ViolationKind,
    message: string,
  ) {
    super(message);
    this.name = 'ViolationError';
  }
}
