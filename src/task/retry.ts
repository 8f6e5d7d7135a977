/** The retry policy of a task: backoff between attempts, which errors retry, and `RetryLater`. */
import type { Duration } from '../util/duration.js';
import { toMs } from '../util/duration.js';

/**
 * How long to wait before the next attempt. `exponential` (the default) doubles from `delay`
 * (default 1 s) up to `maxDelay` (default 1 h); with `jitter` (default on) each delay is drawn
 * uniformly from [d/2, d], so workers that failed together do not retry together.
 */
export type Backoff =
  | { type: 'exponential'; delay?: Duration; maxDelay?: Duration; jitter?: boolean }
  | { type: 'fixed'; delay: Duration; jitter?: boolean };

/** An error class, for `retryOn`. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/** Which errors may be retried: a predicate or a list of error classes. Default: all. */
export type RetryOn = ((err: unknown) => boolean) | readonly ErrorClass[];

/** Most attempts in all a task may make through {@link RetryLater} when it sets no `maxAttempts`. */
export const RETRY_LATER_MAX_ATTEMPTS = 25;

/**
 * Thrown by a handler to ask for another attempt after `delay` (default: the task's backoff). It
 * runs again as read, whatever the task's retry policy: up to the task's `maxAttempts` when it sets
 * one, else up to {@link RETRY_LATER_MAX_ATTEMPTS} attempts in all; past that, the dead letters.
 */
export class RetryLater extends Error {
  readonly delayMs: number | undefined;

  constructor(
    message = 'retry requested by the handler',
    options: { delay?: Duration; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RetryLater';
    this.delayMs = options.delay === undefined ? undefined : toMs(options.delay);
  }
}

/** Delay in ms before the attempt after `attempt` (1-based) failed. */
export function backoffDelay(policy: Backoff | undefined, attempt: number, random = Math.random): number {
  const p: Backoff = policy ?? { type: 'exponential' };
  const base = toMs(p.delay ?? 1000) ?? 1000;
  let d = base;
  if (p.type === 'exponential') {
    const max = toMs(p.maxDelay ?? 3_600_000) ?? 3_600_000;
    d = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  }
  const jitter = p.jitter ?? p.type === 'exponential';
  return Math.round(jitter ? d / 2 + random() * (d / 2) : d);
}

/** True when the task's `retryOn` allows retrying `err`. */
export function isRetryable(retryOn: RetryOn | undefined, err: unknown): boolean {
  if (err instanceof RetryLater) return true;
  if (retryOn === undefined) return true;
  if (typeof retryOn === 'function') return retryOn(err);
  return retryOn.some((cls) => err instanceof cls);
}
