/**
 * One attempt of a held delivery: decode the message, find the task, load claim-checked arguments
 * from the payload store (verified), check the arguments, call the handler, and say what should
 * become of it (recorded as done, retried, dead-lettered, held back by a rate limit, or left for
 * another worker). Never throws; touches Redis only through the rate limiter, and only for a task
 * with rate limits.
 */
import { TaskArgsError, TasukiError, UnknownTaskError } from '../errors.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { IsolationPools } from '../isolation/pool.js';
import type { Logger } from '../log/logger.js';
import type { ProgressWriter } from '../progress/writer.js';
import { claimOf, loadClaimed, PayloadMismatchError, PayloadMissingError } from '../payloads/claim.js';
import type { PayloadStore } from '../payloads/store.js';
import { validate } from '../task/schema.js';
import type { RunSpanEnd, RunSpanStart, TaskTracer } from '../task/tracer.js';
import { RetryLater } from '../task/retry.js';
import type { Task } from '../task/task.js';
import {
  decodeMessage,
  messageOf,
  NewerFormatError,
  type PayloadClaim,
  type TaskMessage,
} from '../wire/message.js';
import { toStoredError, type TaskRecord } from '../wire/record.js';
import {
  cancelled,
  dead,
  deferred,
  encodeResult,
  failed,
  finished,
  recordOf,
  release,
  type Attempt,
  type Run,
} from './attempt.js';
import { callHandler } from './context.js';
import type { Held } from './holdings.js';
import { outcomeOf } from './events.js';
import { formatTaskId } from '../wire/ids.js';

/** Where the runner finds tasks by name. */
export interface TaskRegistry {
  getTaskDefinition(name: string): Task | undefined;
  taskNames(): string[];
}

/** Identity and limits the runner needs from its worker. */
export interface RunnerSettings {
  worker: string;
  maxDeliveries: number;
  unknownTasks: 'release' | 'dead-letter';
  /** How long a task this worker cannot run is left for others before it is dead-lettered, ms. */
  releaseForMs: number;
  log: Logger;
  /** Where claim-checked arguments are loaded from; `undefined`: this worker has no store. */
  payloads: PayloadStore | undefined;
  /** Results whose JSON is over this many bytes go to the payload store (`Infinity`: no store). */
  resultThreshold: number;
  /** How long a stored result is kept (the app's result TTL), ms. */
  resultTtlMs: number;
  /** Reserves start slots of rate-limited tasks; set once the worker is connected. */
  limiter?: RateLimiter | undefined;
  /** Where `ctx.progress` writes; set once the worker is connected. */
  progress?: ProgressWriter | undefined;
  /** The worker's isolate pools, for tasks with `isolation`. */
  isolation?: IsolationPools | undefined;
  /** Traces each attempt (the app option `tracing`); `undefined`: untraced. */
  tracer?: TaskTracer | undefined;
}

export type { Attempt } from './attempt.js';

/** When the rate-limit state cannot be read (Redis away), the task is held back this long, ms. */
const LIMIT_UNKNOWN_DEFER_MS = 1000;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** What is known of an attempt before its message is decoded (one object literal: once per task). */
function newRun(held: Held, s: RunnerSettings): Run {
  return {
    held,
    raw: undefined,
    local: held.entry,
    parked: false,
    name: '?',
    attempt: 1,
    startedAt: Date.now(),
    worker: s.worker,
    storeResult: true,
  };
}

/**
 * Runs one attempt of a held delivery and says what should become of it. Never rejects. Not async:
 * the message is decoded synchronously, and an untraced attempt makes no promise besides its run's.
 */
export function runAttempt(tasks: TaskRegistry, held: Held, s: RunnerSettings): Promise<Attempt> {
  const run = newRun(held, s);
  let msg: TaskMessage;
  try {
    run.raw = messageOf(held.fields);
    msg = decodeMessage(run.raw);
  } catch (err) {
    if (err instanceof NewerFormatError) {
      return Promise.resolve(release(run, 'newer-format', err, s.releaseForMs));
    }
    return Promise.resolve(dead(run, 'undecodable', err));
  }
  held.message = msg;
  run.name = msg.name;
  run.attempt = msg.attempt ?? 1;
  if (msg.id !== undefined) {
    run.local = msg.id;
    run.parked = msg.id !== held.entry;
  }
  if (s.tracer === undefined) return runDecoded(tasks, run, msg, s);
  return s.tracer.run(spanStart(run, msg), () => runDecoded(tasks, run, msg, s), spanEnd);
}

function spanStart(run: Run, msg: TaskMessage): RunSpanStart {
  return {
    id: formatTaskId(run.local, run.held.queue),
    queue: run.held.queue,
    task: run.name,
    attempt: run.attempt,
    worker: run.worker,
    trace: msg.trace,
  };
}

function spanEnd(a: Attempt): RunSpanEnd {
  return { outcome: outcomeOf(a), error: a.record.error };
}

/** A decoded message's attempt: everything after decoding (the part a run span covers). */
async function runDecoded(
  tasks: TaskRegistry,
  run: Run,
  msg: TaskMessage,
  s: RunnerSettings,
): Promise<Attempt> {
  if (msg.expiresAt !== undefined && msg.expiresAt < run.startedAt) {
    const record = recordOf(run, 'expired');
    record.error = toStoredError(
      new TasukiError(
        'E_EXPIRED',
        `not started before its expiry at ${new Date(msg.expiresAt).toISOString()}; not run`,
      ),
    );
    return finished(run, record, 'done');
  }
  const task = tasks.getTaskDefinition(msg.name);
  if (!task) {
    const err = new UnknownTaskError(msg.name, tasks.taskNames());
    return s.unknownTasks === 'release'
      ? release(run, 'unknown-task', err, s.releaseForMs)
      : dead(run, 'unknown-task', err);
  }
  run.storeResult = msg.storeResult ?? task.definition.storeResult ?? true;
  // Only tasks that would run count deliveries: an unknown or expired one never crashed a worker.
  if (run.held.deliveries > s.maxDeliveries) {
    return dead(
      run,
      'max-deliveries',
      new TasukiError(
        'E_LOST',
        `delivered ${run.held.deliveries} times without finishing (its workers died or lost it each time); limit is ${s.maxDeliveries}`,
      ),
    );
  }
  let args = msg.args;
  if (msg.claim !== undefined) {
    const loaded = await loadArgs(task, run, msg, msg.claim, s);
    if ('outcome' in loaded) return loaded;
    args = loaded.args;
  }
  let checked = validate(task.definition.schema, args);
  if (checked instanceof Promise) checked = await checked;
  if (!checked.ok) return dead(run, 'invalid-args', new TaskArgsError(msg.name, checked.issues));

  // Only a task with limits pays for them (one script call); one that comes back at its reserved
  // slot runs without asking again.
  if (task.rateLimits !== undefined && msg.slot === undefined && s.limiter !== undefined) {
    let keys: string[];
    try {
      keys = s.limiter.limitKeys(msg.name, task.rateLimits, checked.value);
    } catch (err) {
      return failed(task, run, msg, err); // the task's key function threw: its own failure
    }
    let waitMs: number;
    try {
      waitMs = await s.limiter.reserve(keys, task.rateLimits);
    } catch {
      // Redis away: the limits cannot be read; hold it back a while (the settle waits for Redis too).
      return deferred(run, msg, LIMIT_UNKNOWN_DEFER_MS, false);
    }
    if (waitMs > 0) return deferred(run, msg, waitMs, true);
  }

  let failure: unknown;
  try {
    const returned = callHandler(task, checked.value, run, s);
    // A handler that returns a plain value (not a promise) costs no extra turn of the event loop.
    const result = isThenable(returned) ? await returned : returned;
    if (run.held.cancelledBy !== undefined) return cancelled(run, run.held.cancelledBy);
    const record = recordOf(run, 'succeeded');
    record.result = result;
    // Encoded here, so a result JSON cannot hold (a BigInt, a cycle) fails the attempt like a throw.
    const encoded = encodeResult(record);
    // The record's length bounds the result's (its bytes are at most 3 per UTF-16 unit): one
    // comparison on the hot path, and none of it without a store (threshold Infinity).
    if (encoded.length * 3 > s.resultThreshold) return await claimResult(run, record, encoded, s);
    return finished(run, record, 'done', encoded);
  } catch (err) {
    failure = err;
  }
  if (run.held.cancelledBy !== undefined) return cancelled(run, run.held.cancelledBy);
  return failed(task, run, msg, failure);
}

/**
 * A delivery cancelled before it started: recorded `cancelled` without running (its message is
 * decoded for the task's name, attempt and id; an undecodable one is recorded under its entry).
 */
export function cancelUnstarted(held: Held, s: RunnerSettings, by: string): Attempt {
  const run = newRun(held, s);
  try {
    const msg = held.message ?? decodeMessage(messageOf(held.fields));
    run.name = msg.name;
    run.attempt = msg.attempt ?? 1;
    if (msg.id !== undefined) {
      run.local = msg.id;
      run.parked = msg.id !== held.entry;
    }
  } catch {
    // recorded under its entry id, as what it is: a task that did not run
  }
  return cancelled(run, by);
}

/**
 * Claim-checked arguments from the payload store, verified: a missing or mismatched payload is a
 * dead letter (the task can never run); a store that failed is retried like `RetryLater`; a worker
 * with no store leaves the task for one that has one.
 */
async function loadArgs(
  task: Task,
  run: Run,
  msg: TaskMessage,
  claim: PayloadClaim,
  s: RunnerSettings,
): Promise<{ args: unknown } | Attempt> {
  if (!s.payloads) {
    const err = new TasukiError(
      'E_CONFIG',
      `the task's arguments are in a payload store (claim ${claim.ref}) and this worker's app has none; ` +
        "configure the same store as the producers' (payloads.store or TASUKI_PAYLOAD_STORE)",
    );
    return release(run, 'no-payload-store', err, s.releaseForMs);
  }
  try {
    return { args: await loadClaimed(s.payloads, claim) };
  } catch (err) {
    if (err instanceof PayloadMissingError) return dead(run, 'payload-missing', err);
    if (err instanceof PayloadMismatchError) return dead(run, 'payload-mismatch', err);
    const message = err instanceof Error ? err.message : String(err);
    return failed(task, run, msg, new RetryLater(message, { cause: err }));
  }
}

/**
 * A result over the threshold goes to the payload store, kept as long as the record, which carries
 * only its claim. If the store fails, the result stays in the record (in Redis), as without a store:
 * the task did succeed, and running it again for a storage problem would be worse.
 */
async function claimResult(
  run: Run,
  record: TaskRecord,
  encoded: string,
  s: RunnerSettings,
): Promise<Attempt> {
  const json = JSON.stringify(record.result);
  const store = s.payloads;
  if (store === undefined || json === undefined || Buffer.byteLength(json) <= s.resultThreshold) {
    return finished(run, record, 'done', encoded);
  }
  const { claim, payload } = claimOf(json, record.finishedAt + s.resultTtlMs);
  try {
    await store.put(payload);
  } catch (err) {
    s.log.warn(
      { err, task: run.name, bytes: claim.size },
      'could not put a big result in the payload store; it is kept in Redis instead',
    );
    return finished(run, record, 'done', encoded);
  }
  const stored: TaskRecord = { ...record, resultClaim: claim };
  delete stored.result;
  return finished(run, stored, 'done');
}
