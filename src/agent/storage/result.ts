import type { Err, ErrorInfo, Ok } from '../../shared/protocol/result';
import { describeIssue, type StorageIssue } from './codec';

/**
 * A storage failure is an ordinary `Err` (so it fits every `Result` consumer)
 * that also carries the classified issue when the failure is damage on disk
 * rather than an I/O error. The integrity engine repairs from `issue`.
 */
export type StorageErr = Err & { readonly issue: StorageIssue | null };
export type StorageResult<T> = Ok<T> | StorageErr;

/** `storage_corruption`, `storage_misdirected`, `storage_stale`, `storage_checksum_mismatch`, `storage_torn_tail`. */
export function issueCode(kind: StorageIssue['kind']): string {
  return `storage_${kind.replace('-', '_')}`;
}

export function storageFailure(issue: StorageIssue): StorageErr {
  const error: ErrorInfo = { code: issueCode(issue.kind), message: describeIssue(issue) };
  return { ok: false, error, issue };
}

/** An I/O failure (permissions, a full disk, EIO): not damage, so no issue to repair. */
export function ioFailure(message: string): StorageErr {
  return { ok: false, error: { code: 'storage_io', message }, issue: null };
}
