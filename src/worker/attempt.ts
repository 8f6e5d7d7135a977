/**
 * What becomes of one attempt: the outcome a runner hands the worker (recorded, retried, parked,
 * dead-lettered or left for another worker), with its task record, built here in one place.
 */
import { CancelledError, TasukiError } from '../errors.js';
import { backoffDelay, isRetryable, RETRY_LATER_MAX_ATTEMPTS, RetryLater } from '../task/retry.js';
import type { Task } from '../task/task.js';
import { encodeDeadLetter } from '../wire/dead-letter.js';
import { reencodeMessage, type TaskMessage } from '../wire/message.js';
import { encodeRecord, toStoredError, type DeadReason, type TaskRecord } from '../wire/record.js';
import type { AttemptIdentity } from './context.js';
import type { Held } from './holdings.js';

/**
 * What became of one attempt. `done`, `retry`, `dead` and `defer` (held back by a rate limit until
 * its slot, not run) are recorded by the settler; `release`
 * leaves the delivery unacknowledged for another worker (a newer one, in a rolling deploy).
 */
export interface Attempt {
  held: Held;
  /** Task id, local part. */
  local: string;
  /** The task id has a field in the parked hash (it came from the delayed set or was handed back). */
  parked: boolean;
  /** Store no record under the result key (`storeResult: false`); waiters get it from the event. */
  dropRecord: boolean;
  record: TaskRecord;
  /** `record`, encoded (JSON). */
  encoded: string;
  outcome: 'done' | 'retry' | 'dead' | 'release' | 'defer';
  /** Retry, defer: when. */
  due?: number;
  /** Retry, defer: the message to park; dead: the dead letter. */
  payload?: string;
}

/** What is known about an attempt while it runs. */
export interface Run extends AttemptIdentity {
  raw: string | undefined;
  local: string;
  parked: boolean;
  name: string;
  attempt: number;
  startedAt: number;
  worker: string;
  /** The task's `storeResult`, from its message or else its definition (default true). */
  storeResult: boolean;
}

/** A record for this attempt, built in one object literal (this runs once per task). */
export function recordOf(run: Run, state: TaskRecord['state']): TaskRecord {
  return {
    state,
    task: run.name,
    attempt: run.attempt,
    worker: run.worker,
    startedAt: run.startedAt,
    finishedAt: Date.now(),
    // In the literal, so setting it (most records) needs no second allocation; JSON leaves it out
    // while undefined.
    result: undefined,
  };
}

export function finished(
  run: Run,
  record: TaskRecord,
  outcome: Attempt['outcome'],
  encoded = encodeRecord(record),
): Attempt {
  return {
    held: run.held,
    local: run.local,
    parked: run.parked,
    dropRecord: !run.storeResult,
    record,
    encoded,
    outcome,
  };
}

export function dead(run: Run, reason: DeadReason, err: unknown): Attempt {
  const error = toStoredError(err);
  const record = recordOf(run, 'failed');
  record.error = error;
  record.reason = reason;
  const attempt = finished(run, record, 'dead');
  attempt.payload = encodeDeadLetter({
    id: run.local,
    queue: run.held.queue,
    task: run.name,
    reason,
    error,
    attempts: run.attempt,
    failedAt: record.finishedAt,
    message: run.raw ?? JSON.stringify(run.held.fields),
  });
  return attempt;
}

/**
 * Leaves the delivery for another worker until it has waited `releaseForMs` in the stream; after
 * that, dead letter. The worker marks it idle and uncounted, so any reclaimer takes it at once —
 * sooner or later one of a worker that can run it, since every round is a fresh draw. Bounded in
 * time, not deliveries: these rounds say nothing about a task that crashes its workers.
 */
export function release(run: Run, reason: DeadReason, err: TasukiError, releaseForMs: number): Attempt {
  const waitedMs = Date.now() - entryTime(run.held.entry);
  if (!(waitedMs < releaseForMs)) return dead(run, reason, err);
  const record = recordOf(run, 'queued');
  record.error = toStoredError(err);
  record.reason = reason;
  return {
    held: run.held,
    local: run.local,
    parked: run.parked,
    dropRecord: false,
    record,
    encoded: '',
    outcome: 'release',
  };
}

/** When an entry entered its stream: the ms part of its id (NaN for an id that is not a stream id). */
function entryTime(entry: string): number {
  return Number(entry.slice(0, entry.indexOf('-')));
}

export function encodeResult(record: TaskRecord): string {
  try {
    return encodeRecord(record);
  } catch (err) {
    throw new TasukiError(
      'E_RESULT',
      `the handler's result cannot be stored as JSON (${(err as Error).message}); return plain data ` +
        '(numbers, strings, arrays, objects; no BigInt, cycles or class instances that do not serialise)',
      { cause: err },
    );
  }
}

/**
 * Held back by a rate limit: parked in the delayed set until its slot, as the same attempt, so it is
 * neither run nor counted as one. With `reserved` the slot is its own and it runs then without
 * asking again.
 */
export function deferred(run: Run, msg: TaskMessage, waitMs: number, reserved: boolean): Attempt {
  const due = Date.now() + waitMs;
  const attempt = finished(run, recordOf(run, 'delayed'), 'defer', '');
  attempt.parked = true;
  attempt.due = due;
  attempt.payload = reencodeMessage(msg, {
    id: run.local,
    attempt: run.attempt,
    expiresAt: msg.expiresAt,
    slot: reserved ? due : undefined,
    storeResult: msg.storeResult,
    canvas: msg.canvas,
  });
  return attempt;
}

/** A thrown error: retry it by the task's policy, or dead-letter it. */
export function failed(task: Task, run: Run, msg: TaskMessage, err: unknown): Attempt {
  const definition = task.definition;
  const retryLater = err instanceof RetryLater;
  const maxAttempts = definition.maxAttempts ?? (retryLater ? RETRY_LATER_MAX_ATTEMPTS : 1);
  if (!isRetryable(definition.retryOn, err)) return dead(run, 'not-retryable', err);
  if (run.attempt >= maxAttempts) return dead(run, 'max-attempts', err);
  const delay = (retryLater ? err.delayMs : undefined) ?? backoffDelay(definition.backoff, run.attempt);
  const record = recordOf(run, 'retrying');
  record.error = toStoredError(err);
  record.retryAt = Date.now() + delay;
  const attempt = finished(run, record, 'retry');
  attempt.parked = true;
  attempt.due = record.retryAt;
  attempt.payload = reencodeMessage(msg, {
    id: run.local,
    attempt: run.attempt + 1,
    expiresAt: msg.expiresAt,
    storeResult: msg.storeResult,
    canvas: msg.canvas,
  });
  return attempt;
}

/**
 * Cancelled (`app.cancel`): recorded as `cancelled` with its error, whatever the handler did —
 * not retried, not dead-lettered. Also for a cancelled task this worker had not started.
 */
export function cancelled(run: Run, by: string): Attempt {
  const record = recordOf(run, 'cancelled');
  const error = toStoredError(new CancelledError(by));
  delete error.stack;
  record.error = error;
  record.by = by;
  return finished(run, record, 'done');
}
