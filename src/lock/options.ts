import { z } from 'zod';
import { OptionsError, type FieldIssue } from '../errors.js';
import { DEFAULT_LOCK_TTL_MS } from '../keys/tasuki-keys.js';
import type { Duration } from '../util/duration.js';
import { duration, integer, parseOptions, quote } from '../util/options.js';

/** Wait for replicas to acknowledge an acquisition (Redis `WAIT`) before it counts. */
export interface WaitReplicas {
  /** Replicas that must acknowledge the lock write. */
  replicas: number;
  /** Longest wait for them, in ms or a duration string (default 1000 ms). */
  timeout?: Duration;
}

/**
 * Options of a {@link Lock}, in the spirit of redis-py's `Lock(timeout, sleep, blocking,
 * blocking_timeout)`. Durations are milliseconds or strings such as `"30s"`.
 */
export interface LockOptions {
  /**
   * Lock TTL (redis-py `timeout`): the lock frees itself this long after acquisition or the last
   * extend. Default 30 s. A lock always has a TTL; use `autoRenew` for work of unknown length.
   */
  ttl?: Duration;
  /** Wait for a held lock to be freed (default true). When false, `acquire()` tries once. */
  blocking?: boolean;
  /**
   * Longest time `acquire()` takes in all, waiting for the lock and for Redis to answer
   * (redis-py `blocking_timeout`). Default 10 s; `Infinity` waits for ever. Also bounds a
   * non-blocking attempt when Redis does not answer.
   */
  maxWait?: Duration;
  /** Pause between attempts while blocking (redis-py `sleep`), jittered ±20 %. Default 100 ms. */
  retryInterval?: Duration;
  /**
   * Renew the lock every ttl/3 while it is held. If a renewal finds the lock gone, or none succeeds
   * before the lock's validity ends, the holder's `signal` aborts with a {@link LockLostError}.
   */
  autoRenew?: boolean;
  /** After acquiring, wait until this many replicas have the lock (see docs/locks.md, failover). */
  waitReplicas?: WaitReplicas;
}

/** Options after validation, with defaults applied. */
export interface ResolvedLockOptions {
  ttlMs: number;
  blocking: boolean;
  maxWaitMs: number;
  retryIntervalMs: number;
  autoRenew: boolean;
  waitReplicas: { replicas: number; timeoutMs: number } | undefined;
}

export const LOCK_DEFAULTS = {
  ttlMs: DEFAULT_LOCK_TTL_MS,
  maxWaitMs: 10_000,
  retryIntervalMs: 100,
  waitReplicasTimeoutMs: 1000,
} as const;

/**
 * A whole, positive number of ms or a duration string (`"30s"`), parsed by the shared
 * {@link duration}; with `orInfinity`, `Infinity` too. Whole, because Redis takes `PX`/`PEXPIRE` in
 * integer ms and would refuse `1.5` only once the lock is in use.
 */
export function wholeMs(orInfinity = false): z.ZodType<number, unknown> {
  const parse = duration();
  return z.unknown().transform((value, ctx) => {
    if (orInfinity && value === Infinity) return Infinity;
    const r = parse.safeParse(value);
    if (r.success && Number.isInteger(r.data)) return r.data;
    // quote() prints NaN and ±Infinity as JSON does ("null"); a number is shown as itself.
    const shown = typeof value === 'number' ? String(value) : quote(value);
    ctx.addIssue({
      code: 'custom',
      message: `${shown} is not a positive whole number of ms or a duration such as "500ms", "30s"${orInfinity ? ', or Infinity' : ''}`,
    });
    return z.NEVER;
  });
}

const lockOptionsSchema = z
  .object({
    ttl: wholeMs().default(LOCK_DEFAULTS.ttlMs),
    blocking: z.boolean().default(true),
    maxWait: wholeMs(true).default(LOCK_DEFAULTS.maxWaitMs),
    retryInterval: wholeMs().default(LOCK_DEFAULTS.retryIntervalMs),
    autoRenew: z.boolean().default(false),
    waitReplicas: z
      .object({
        replicas: integer(1),
        timeout: wholeMs().default(LOCK_DEFAULTS.waitReplicasTimeoutMs),
      })
      .strict()
      .optional(),
  })
  .strict();

/**
 * Validates lock options and applies defaults; throws an {@link OptionsError} (`E_OPTIONS`) naming
 * each bad field and quoting its value. Unknown options (a typo, or redis-py's `timeout` for `ttl`)
 * are refused too.
 */
export function resolveLockOptions(name: string, o: LockOptions = {}): ResolvedLockOptions {
  const issues: FieldIssue[] = [];
  if (typeof name !== 'string' || name.length === 0) {
    issues.push({ path: 'name', message: `${quote(name)} is not a lock name (a non-empty string)` });
  }
  let parsed: z.output<typeof lockOptionsSchema> | undefined;
  try {
    parsed = parseOptions(lockOptionsSchema, o, 'lock options', 'E_OPTIONS');
  } catch (err) {
    if (!(err instanceof OptionsError)) throw err;
    issues.push(...err.issues);
  }
  if (issues.length || !parsed) throw new OptionsError(`options for lock ${quote(name)}`, issues);
  return {
    ttlMs: parsed.ttl,
    blocking: parsed.blocking,
    maxWaitMs: parsed.maxWait,
    retryIntervalMs: parsed.retryInterval,
    autoRenew: parsed.autoRenew,
    waitReplicas: parsed.waitReplicas && {
      replicas: parsed.waitReplicas.replicas,
      timeoutMs: parsed.waitReplicas.timeout,
    },
  };
}

const extendSchema = z.object({ ms: wholeMs() }).strict();

/** Validates the `ms` of `extend(ms)`: a whole, positive duration (PEXPIRE 0 would delete the key). */
export function resolveExtendMs(name: string, ms: unknown): number {
  return parseOptions(extendSchema, { ms }, `extend of lock ${quote(name)}`, 'E_OPTIONS').ms;
}
