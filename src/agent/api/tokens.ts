import { timingSafeEqual } from 'node:crypto';

export type Access = 'viewer' | 'operator';

function equal(expected: string, presented: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What a presented token allows; compared in constant time. */
export function accessFor(presented: unknown, tokens: { viewerToken: string; operatorToken: string }): Access | null {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 512) return null;
  if (equal(tokens.operatorToken, presented)) return 'operator';
  if (equal(tokens.viewerToken, presented)) return 'viewer';
  return null;
}
