/** Enqueue options (delay, ETA, expiry, idempotency key, queue): checked against each other, resolved to absolute times. */
import { OptionsError, UnknownQueueError, type FieldIssue } from '../errors.js';
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
}

const KNOWN = new Set(['queue', 'delay', 'eta', 'expires', 'expiresAt', 'idempotencyKey', 'storeResult']);

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
  if (issues.length) throw new OptionsError('enqueue options', issues);
  if (!queues.includes(queue)) throw new UnknownQueueError(queue, queues);
  return { queue, due, expiresAt, idempotencyKey: key, storeResult: o.storeResult };
}
