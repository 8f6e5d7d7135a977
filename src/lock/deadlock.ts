import { z } from 'zod';
import { integer, parseOptions, quote } from '../util/options.js';

/** Options of {@link withDeadlockRetry}. */
export interface DeadlockRetryOptions {
  /** Runs in all, the first included (default 3, as in the source's MySQL 1213 hook). */
  attempts?: number;
  /** Base pause before a re-run in ms (default 200); each pause is jittered to 50–150 % of it. */
  backoffMs?: number;
  /** Called before each re-run with the error and the number of the attempt that failed. */
  onRetry?: (err: unknown, attempt: number) => void;
}

const deadlockRetrySchema = z
  .object({
    attempts: integer(1).default(3),
    backoffMs: z
      .custom<number>((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, {
        // quote() would print NaN and Infinity as JSON does ("null"); a number is shown as itself.
        error: (i) =>
          `${typeof i.input === 'number' ? String(i.input) : quote(i.input)} is not a number of ms >= 0`,
      })
      .default(200),
    onRetry: z
      .custom<(err: unknown, attempt: number) => void>((v) => typeof v === 'function', {
        error: (i) => `${quote(i.input)} is not a function`,
      })
      .optional(),
  })
  .strict();

const PG_RETRYABLE = new Set(['40P01', '40001']);
/**
 * MySQL/MariaDB errors a re-run can fix: 1213 ER_LOCK_DEADLOCK (InnoDB chose this transaction as
 * the deadlock victim; also Galera/Group Replication certification failures) and 1020 ER_CHECKREAD
 * (MariaDB's serialization failure: with innodb_snapshot_isolation a row changed since the
 * transaction's snapshot).
 */
const MYSQL_RETRYABLE_CODES = new Set(['ER_LOCK_DEADLOCK', 'ER_CHECKREAD']);
const MYSQL_RETRYABLE_ERRNOS = new Set([1213, 1020]);

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/**
 * True for errors a re-run of the whole transaction can fix: PostgreSQL deadlock_detected (40P01)
 * and serialization_failure (40001) from `pg`; MySQL/MariaDB deadlock 1213 (`errno` 1213 or code
 * `ER_LOCK_DEADLOCK`) and MariaDB's serialization failure 1020 (`ER_CHECKREAD`), from `mysql2` or
 * `mysql`. Looks through `cause` as well.
 */
export function isDeadlockError(err: unknown): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; e = field(e, 'cause'), depth++) {
    const code = field(e, 'code');
    if (typeof code === 'string' && (PG_RETRYABLE.has(code) || MYSQL_RETRYABLE_CODES.has(code))) return true;
    const errno = field(e, 'errno');
    if (typeof errno === 'number' && MYSQL_RETRYABLE_ERRNOS.has(errno)) return true;
  }
  return false;
}

/**
 * Runs `fn` (one whole transaction: BEGIN ... COMMIT inside it) and re-runs it when it fails with a
 * deadlock or serialization failure ({@link isDeadlockError}), up to `attempts` runs with a short
 * jittered backoff. Any other error, or the last deadlock, is thrown as it is. `fn` gets the attempt
 * number (1-based).
 */
export async function withDeadlockRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: DeadlockRetryOptions = {},
): Promise<T> {
  const { attempts, backoffMs, onRetry } = parseOptions(
    deadlockRetrySchema,
    options,
    'withDeadlockRetry options',
    'E_OPTIONS',
  );
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !isDeadlockError(err)) throw err;
      onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, Math.round(backoffMs * (0.5 + Math.random()))));
    }
  }
}
