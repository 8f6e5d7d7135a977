/** Checks shared by every fenced write (Redis, PostgreSQL, MySQL): the token and the row's key. */
import { TasukiError } from '../errors.js';

/** A fencing token as the decimal text the stores compare; `E_OPTIONS` unless a non-negative bigint. */
export function tokenText(token: bigint): string {
  if (typeof token !== 'bigint' || token < 0n) {
    throw new TasukiError(
      'E_OPTIONS',
      `fencing token must be a non-negative bigint (lock.token), got ${String(token)}`,
    );
  }
  return token.toString();
}

/** The key columns and values of a fenced row write; `E_OPTIONS` when it names none. */
export function rowKey(w: { table: string; key: Record<string, unknown> }): [string, unknown][] {
  const entries = Object.entries(w.key);
  if (entries.length === 0)
    throw new TasukiError('E_OPTIONS', `fenced write to ${w.table}: key must name at least one column`);
  return entries;
}
