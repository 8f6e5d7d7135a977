/** Enqueue options (delay, ETA, expiry, idempotency key, queue, priority): checked against each other, resolved to absolute times. */
import { OptionsError, UnknownQueueError, type FieldIssue } from '../errors.js';
import { quote } from '../util/quote.js';
import { MAX_PRIORITY } from '../wire/priority.js';
import type { Duration } from '../util/duration.js';
import { toMs } from '../util/duration.js';

/** Options for one enqueue. */
export interface EnqueueOptions {
  /** Queue to put the task on; default the task's queue. Must be one the app declares. */
  queue?: string;
  /** Run no sooner than this long from now. Not with `eta`. */
  delay?: Duration;
  /** Run no sooner than this time. Not with `delay`. */
  eta?: Date | number;
  /** Do not run if not started within this long from now. Not with `expiresAt`. */
  expires?: Duration;
  /** Do not run if not started by this time. Not with `expires`. */
  expiresAt?: Date | number;
  /**
   * Enqueue at most once per key (within the app's idempotency TTL, default 24 h): a repeat returns
   * the first task's handle with `created: false`. Long keys are stored as their hash.
   */
  idempotencyKey?: string;
  /**
   * Store this task's record (state and result) under its result key for the app's result TTL;
   * default: as the task's definition says (`storeResult`, itself default `true`). With `false` a
   * finished task leaves nothing in Redis but its completion event: `handle.result()` still gets
   * the result (see docs/memory.md), `app.getTask()` no longer finds the task once it finished.
   */
  storeResult?: boolean;
  /**
   * Priority level: an integer from 0 (the default) to 3; a worker takes the tasks of higher levels
   * of a queue first (see docs/control.md, "Priorities": strict within each read, and each read also
   * takes from the lower levels, so they are never starved while workers have room). Default: the
   * task definition's `priority`, else 0. Kept by retries, delays and hand-backs.
   */
  priority?: number;
}

/** Enqueue options after validation: absolute times in ms. */
export interface ResolvedOptions {
  queue: string;
  /** Due time in ms, or 0 to run at once. */
  due: number;
  expiresAt: number | undefined;
  idempotencyKey: string | undefined;
  /** `undefined`: as the task's definition says. */
  storeResult: boolean | undefined;
  /** `undefined`: as the task's definition says (else 0). */
  priority: number | undefined;
}

/**
 * What is wrong with a priority level, or `undefined` when it is one (an integer 0..3). Shared by
 * enqueue options and task definitions.
 */
export function priorityProblem(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_PRIORITY)
    return undefined;
  return `${quote(value)} is not a priority level: give an integer from 0 (the default) to ${MAX_PRIORITY} (highest first)`;
}

const KNOWN = new Set([
  'queue',
  'delay',
  'eta',
  'expires',
  'expiresAt',
  'idempotencyKey',
  'storeResult',
  'priority',
]);

function time(v: unknown): number | undefined {
  const t = v instanceof Date ? v.getTime() : v;
  return typeof t === 'number' && Number.isFinite(t) && t >= 0 ? t : undefined;
}

/** Validates enqueue options against each other and the app's queues; throws naming the bad fields. */
export function resolveOptions(
  opts: EnqueueOptions | undefined,
  defaultQueue: string,
  queues: readonly string[],
  now: number,
  path = '',
): ResolvedOptions {
  if (opts === undefined) {
    // The common case, on the hot path of bulk enqueues: nothing to check but the queue.
    if (!queues.includes(defaultQueue)) throw new UnknownQueueError(defaultQueue, queues);
    return {
      queue: defaultQueue,
      due: 0,
      expiresAt: undefined,
      idempotencyKey: undefined,
      storeResult: undefined,
      priority: undefined,
    };
  }
  const o = opts;
  const issues: FieldIssue[] = [];
  const at = (f: string): string => (path ? `${path}.${f}` : f);
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new OptionsError('enqueue options', [{ path: at('(options)'), message: 'must be an object' }]);
  }
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k))
      issues.push({ path: at(k), message: `unknown option; known: ${[...KNOWN].join(', ')}` });
  }
  const queue = o.queue ?? defaultQueue;
  if (typeof queue !== 'string') issues.push({ path: at('queue'), message: 'must be a string' });
  let due = 0;
  if (o.delay !== undefined && o.eta !== undefined) {
    issues.push({ path: at('delay'), message: 'give delay or eta, not both' });
  } else if (o.delay !== undefined) {
    const ms = toMs(o.delay);
    if (ms === undefined) {
      issues.push({
        path: at('delay'),
        message: `${JSON.stringify(o.delay)} is not a duration (ms, or "30s", "5m")`,
      });
    } else if (ms > 0) due = now + ms;
  } else if (o.eta !== undefined) {
    const t = time(o.eta);
    if (t === undefined) issues.push({ path: at('eta'), message: 'must be a Date or a time in ms' });
    else if (t > now) due = t;
  }
  let expiresAt: number | undefined;
  if (o.expires !== undefined && o.expiresAt !== undefined) {
    issues.push({ path: at('expires'), message: 'give expires or expiresAt, not both' });
  } else if (o.expires !== undefined) {
    const ms = toMs(o.expires);
    if (ms === undefined || ms === 0) {
      issues.push({
        path: at('expires'),
        message: `${JSON.stringify(o.expires)} is not a positive duration`,
      });
    } else expiresAt = now + ms;
  } else if (o.expiresAt !== undefined) {
    const t = time(o.expiresAt);
    if (t === undefined) issues.push({ path: at('expiresAt'), message: 'must be a Date or a time in ms' });
    else if (t <= now) issues.push({ path: at('expiresAt'), message: 'is in the past' });
    else expiresAt = t;
  }
  if (expiresAt !== undefined && due > 0 && expiresAt <= due) {
    issues.push({
      path: at(o.expires !== undefined ? 'expires' : 'expiresAt'),
      message: 'expires before the task is due (see delay/eta); it could never run',
    });
  }
  const key = o.idempotencyKey;
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 4096)) {
    issues.push({
      path: at('idempotencyKey'),
      message: 'must be a non-empty string of at most 4096 characters',
    });
  }
  if (o.storeResult !== undefined && typeof o.storeResult !== 'boolean')
    issues.push({ path: at('storeResult'), message: 'must be true or false' });
  if (o.priority !== undefined) {
    const problem = priorityProblem(o.priority);
    if (problem) issues.push({ path: at('priority'), message: problem });
  }
  if (issues.length) throw new OptionsError('enqueue options', issues);
  if (!queues.includes(queue)) throw new UnknownQueueError(queue, queues);
  return { queue, due, expiresAt, idempotencyKey: key, storeResult: o.storeResult, priority: o.priority };
}
