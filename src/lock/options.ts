import { OptionsError, type FieldIssue } from '../errors.js';
import { DEFAULT_LOCK_TTL_MS } from '../keys/tasuki-keys.js';
import { toMs, type Duration } from '../util/duration.js';

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

function positiveMs(v: Duration | undefined, fallback: number, path: string, issues: FieldIssue[]): number {
  if (v === undefined) return fallback;
  const ms = toMs(v);
  if (ms === undefined || ms <= 0 || !Number.isInteger(ms)) {
    issues.push({
      path,
      message: `must be a positive whole number of ms or a duration like "30s", got ${JSON.stringify(v)}`,
    });
    return fallback;
  }
  return ms;
}

/** Validates lock options and applies defaults; throws an {@link OptionsError} naming each bad field. */
export function resolveLockOptions(name: string, o: LockOptions = {}): ResolvedLockOptions {
  const issues: FieldIssue[] = [];
  if (typeof name !== 'string' || name.length === 0) {
    issues.push({ path: 'name', message: `must be a non-empty string, got ${JSON.stringify(name)}` });
  }
  const ttlMs = positiveMs(o.ttl, LOCK_DEFAULTS.ttlMs, 'ttl', issues);
  const maxWaitMs =
    o.maxWait === Infinity ? Infinity : positiveMs(o.maxWait, LOCK_DEFAULTS.maxWaitMs, 'maxWait', issues);
  const retryIntervalMs = positiveMs(o.retryInterval, LOCK_DEFAULTS.retryIntervalMs, 'retryInterval', issues);
  let waitReplicas: ResolvedLockOptions['waitReplicas'];
  if (o.waitReplicas !== undefined) {
    const { replicas, timeout } = o.waitReplicas;
    if (!Number.isInteger(replicas) || replicas < 1) {
      issues.push({
        path: 'waitReplicas.replicas',
        message: `must be an integer >= 1, got ${JSON.stringify(replicas)}`,
      });
    }
    const timeoutMs = positiveMs(
      timeout,
      LOCK_DEFAULTS.waitReplicasTimeoutMs,
      'waitReplicas.timeout',
      issues,
    );
    waitReplicas = { replicas, timeoutMs };
  }
  if (issues.length) throw new OptionsError(`options for lock "${name}"`, issues);
  return {
    ttlMs,
    blocking: o.blocking ?? true,
    maxWaitMs,
    retryIntervalMs,
    autoRenew: o.autoRenew ?? false,
    waitReplicas,
  };
}
