import { z } from 'zod';

/**
 * Answers that cross a process boundary are values, never thrown exceptions:
 * `{ ok: true, data } | { ok: false, error: { code, message } }`.
 */
export const ErrorInfoSchema = z.object({
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

export type Ok<T> = { readonly ok: true; readonly data: T };
export type Err = { readonly ok: false; readonly error: ErrorInfo };
export type Result<T> = Ok<T> | Err;

export function ok<T>(data: T): Ok<T> {
  return { ok: true, data };
}

export function err(code: string, message: string): Err {
  return { ok: false, error: { code, message } };
}

export function resultSchema<T extends z.ZodType>(data: T) {
  return z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), data }),
    z.object({ ok: z.literal(false), error: ErrorInfoSchema }),
  ]);
}

/**
 * Formats a zod error as one line that names every offending field by its path,
 * e.g. `status.epoch: expected number, received string`.
 */
export function describeIssues(error: z.ZodError, root = ''): string {
  return error.issues
    .slice(0, 8)
    .map((issue) => {
      const path = [root, ...issue.path.map(String)].filter((part) => part !== '').join('.');
      return `${path === '' ? '(root)' : path}: ${issue.message}`;
    })
    .join('; ');
}

/** Parses untrusted input at a trust boundary; the error names the field that is wrong. */
export function parse<T extends z.ZodType>(
  schema: T,
  input: unknown,
  what: string,
): Result<z.infer<T>> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return ok(parsed.data);
  return err('invalid_payload', `invalid ${what}: ${describeIssues(parsed.error, what)}`);
}
