/** A task's definition: what `app.task()` takes, and its validation (one schema). */
import { z } from 'zod';
import type { Logger } from '../log/logger.js';
import type { ProgressValue } from '../progress/value.js';
import type { Duration } from '../util/duration.js';
import { duration, integer, parseOptions, quote } from '../util/options.js';
import { rateLimitProblem, type RateLimit } from '../limits/rate.js';
import type { Isolation } from './isolation.js';
import type { Backoff, RetryOn } from './retry.js';
import { isStandardSchema, type InferOutput, type StandardSchemaV1 } from './schema.js';
import { priorityProblem } from './enqueue-options.js';

/** What a handler gets besides its arguments. */
export interface TaskContext {
  /** Task id (`<local>@<queue>`). */
  id: string;
  queue: string;
  /** Attempt number, from 1. */
  attempt: number;
  /**
   * The priority level (0-3) the task was delivered at: its enqueue's `priority`, kept by retries,
   * delays and hand-backs (see docs/control.md, "Priorities").
   */
  priority: number;
  /** Aborted when the task should stop (time limit, shutdown). */
  signal: AbortSignal;
  /** Logger bound to this task's id, name, queue and attempt. */
  log: Logger;
  /**
   * Reports progress: a number or small JSON (at most 1 KiB), e.g. `ctx.progress({ done, total })`.
   * Throttled to one write per 250 ms per task; the last value is always written when the attempt
   * ends. Anyone can read it (`handle.progress()`, `handle.followProgress()`, `app.getProgress(id)`).
   * Throws `E_PROGRESS` for a value that is not JSON or too big; never fails on Redis (best effort).
   */
  progress(value: ProgressValue): void;
  /**
   * This attempt's fencing token: greater than the token of every earlier attempt of the task, and
   * of this attempt's run on a worker presumed dead before another worker took it over. Pass it to
   * the lock part's fenced writes (`fencedSet`, `fencedUpsert`, `fencedUpdate`) so a paused or
   * cut-off worker's late write is refused with `StaleTokenError` (one write per resource per
   * attempt: a second write with the same token is stale too). See docs/reliability.md.
   */
  fence: bigint;
}

/** A task's definition: name, argument schema, handler and defaults. */
export interface TaskDefinition<S extends StandardSchemaV1, R> {
  /** Unique name, e.g. `email.send`; this is what messages carry. */
  name: string;
  /** Schema of the arguments (zod, valibot, arktype... any Standard Schema). */
  schema: S;
  /** Runs the task; its return value (JSON) is the result, a thrown error the failure. */
  handler: (args: InferOutput<S>, ctx: TaskContext) => Promise<R> | R;
  /** Default queue (default `default`). */
  queue?: string;
  /** Most attempts in all, including the first (default 1: no retry). */
  maxAttempts?: number;
  /** Delay between attempts (default exponential from 1 s, capped at 1 h, with jitter). */
  backoff?: Backoff;
  /** Retry only these errors (classes, or a predicate); others go straight to the dead letters. */
  retryOn?: RetryOn;
  /** Hard time limit of one attempt: past it the attempt is failed and the worker moves on. */
  timeLimit?: Duration;
  /** Soft time limit: past it `ctx.signal` is aborted so the handler can stop cleanly. */
  softTimeLimit?: Duration;
  /**
   * Encoded arguments over this many bytes go to the app's payload store and the message carries a
   * claim check (default: the app's `payloads.threshold`, 1 KiB). No effect without a store.
   */
  payloadThreshold?: number;
  /**
   * Rate limit(s) enforced across all workers (see docs/rate-limits.md): `'100/s'` for the task, or
   * `{ rate: '10/s', key: (args) => args.customerId }` for each key value, or a list of both. A task
   * over its limit is not run: it waits in the delayed set until its slot, without using an attempt.
   */
  rateLimit?: RateLimit<InferOutput<S>> | readonly RateLimit<InferOutput<S>>[];
  /**
   * Store each finished task's record (state and result) under its result key for the app's result
   * TTL (default `true`). With `false` (Celery's `ignore_result`), a task that succeeded leaves
   * nothing in Redis but its completion event, which is all `handle.result()` needs; a failed task
   * still stores its record (it says why). An enqueue may say otherwise (`storeResult` option).
   */
  storeResult?: boolean;
  /**
   * Run the handler outside the worker's event loop (see docs/isolation.md): `'thread'` in a pool of
   * worker threads, `'process'` in a pool of child processes, each of which imports the module that
   * defines the task. A CPU-bound handler then blocks neither heartbeats nor other tasks, its hard
   * time limit ends the thread or process, and a crash fails the attempt, not the worker.
   */
  isolation?: Isolation;
  /**
   * Default priority level of this task's enqueues: an integer from 0 (the default) to 3, higher
   * served first (see docs/control.md, "Priorities"). An enqueue's `priority` option overrides it.
   * Canvas members ignore it (they run at level 0).
   */
  priority?: number;
}

/** Task names: 1-128 of letters, digits, `_ . : -`, starting with a letter or digit. */
const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

const backoff = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('exponential'),
    delay: duration().optional(),
    maxDelay: duration().optional(),
    jitter: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal('fixed'), delay: duration(), jitter: z.boolean().optional() }),
]);

const retryOn = z.custom<RetryOn>().superRefine((value, ctx) => {
  if (Array.isArray(value)) {
    if (!value.every((c) => typeof c === 'function')) {
      ctx.addIssue({ code: 'custom', message: 'must be an array of error classes' });
    }
  } else if (typeof value !== 'function') {
    ctx.addIssue({ code: 'custom', message: 'must be an array of error classes or a predicate' });
  } else if ((value as { prototype?: unknown }).prototype instanceof Error) {
    ctx.addIssue({ code: 'custom', message: 'is an error class; wrap it in an array: retryOn: [MyError]' });
  }
});

const schema = z.strictObject({
  name: z.string().superRefine((name, ctx) => {
    if (!TASK_NAME.test(name)) {
      ctx.addIssue({
        code: 'custom',
        message: `${quote(name)} is not a task name (1-128 of A-Z a-z 0-9 _ . : -)`,
      });
    }
  }),
  schema: z.custom(isStandardSchema, 'must be a schema (zod, valibot... any Standard Schema)'),
  handler: z.custom((v) => typeof v === 'function', 'must be a function'),
  queue: z.string().optional(),
  maxAttempts: integer(1).optional(),
  backoff: backoff.optional(),
  retryOn: retryOn.optional(),
  timeLimit: duration().optional(),
  softTimeLimit: duration().optional(),
  payloadThreshold: integer(0).optional(),
  storeResult: z.boolean().optional(),
  priority: z
    .custom()
    .superRefine((value, ctx) => {
      const problem = priorityProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  isolation: z
    .union([
      z.enum(['thread', 'process']),
      z.strictObject({
        kind: z.enum(['thread', 'process']),
        module: z.union([z.string().min(1), z.instanceof(URL)]).optional(),
        size: integer(1).optional(),
        maxMemoryMb: integer(16).optional(),
      }),
    ])
    .optional(),
  rateLimit: z
    .custom()
    .superRefine((value, ctx) => {
      const problem = rateLimitProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

/** Checks a task definition; throws an `E_CONFIG` error naming every bad field. */
export function checkDefinition(definition: unknown): void {
  const name = (definition as { name?: unknown } | null)?.name;
  parseOptions(schema, definition, `task definition ${quote(name)}`);
}
