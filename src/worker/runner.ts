import type { Logger } from '../log/logger.js';
import { TaskArgsError, TimeLimitError, UnknownTaskError, TasukiError } from '../errors.js';
import type { Tasuki } from '../app/app.js';
import { formatTaskId } from '../wire/ids.js';
import { decodeMessage, encodeMessage, MESSAGE_FIELD, type TaskMessage } from '../wire/message.js';
import { validate } from '../task/schema.js';
import type { Task, TaskContext } from '../task/task.js';
import { toStoredError, type DeadReason, type StoredError, type TaskRecord } from '../wire/record.js';
import { toMs } from '../util/duration.js';
import { backoffDelay, isRetryable, RetryLater } from '../task/retry.js';

/** A stream entry a worker holds. */
export interface Fetched {
  queue: string;
  entry: string;
  fields: string[];
  /** Times the entry has been delivered (known for reclaimed entries; 1 otherwise). */
  deliveries: number;
  /** Made when the handler first reads `ctx.signal`. */
  controller?: AbortController;
  /** Why the attempt was aborted, if it was (before or after the handler read its signal). */
  abortReason?: Error;
  /** Decoded message, once decoded. */
  message?: TaskMessage;
}

/** A dead letter as stored in a queue's dead-letter stream (JSON in field `d`). */
export interface StoredDeadLetter {
  /** Task id (local part) and queue. */
  id: string;
  queue: string;
  task: string;
  reason: DeadReason;
  error: StoredError;
  attempts: number;
  failedAt: number;
  /** The raw message, so the task can be retried as it was. */
  message: string;
}

/** What became of one attempt: what the completer writes. */
export interface Attempt {
  fetched: Fetched;
  /** Task id, local part. */
  local: string;
  /** The task id has a field in the parked hash (it came from the delayed set or was handed back). */
  parked: boolean;
  record: TaskRecord;
  outcome: 'done' | 'retry' | 'dead';
  due?: number;
  payload?: string;
}

/** Limits and identity the runner needs from its worker. */
export interface RunnerSettings {
  worker: string;
  maxDeliveries: number;
  log: Logger;
}

/** The value of a stream entry's field. */
export function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** What is known about an attempt while it runs. */
interface Run {
  f: Fetched;
  raw: string | undefined;
  local: string;
  parked: boolean;
  name: string;
  attempt: number;
  startedAt: number;
  worker: string;
}

/** A record for this attempt, built in one object literal (this runs once per task). */
function recordOf(r: Run, state: TaskRecord['state']): TaskRecord {
  return {
    state,
    task: r.name,
    attempt: r.attempt,
    worker: r.worker,
    startedAt: r.startedAt,
    finishedAt: Date.now(),
  };
}

function done(r: Run, record: TaskRecord): Attempt {
  return { fetched: r.f, local: r.local, parked: r.parked, record, outcome: 'done' };
}

function dead(r: Run, reason: DeadReason, err: unknown): Attempt {
  const error = toStoredError(err);
  const record = recordOf(r, 'failed');
  record.error = error;
  record.reason = reason;
  const letter: StoredDeadLetter = {
    id: r.local,
    queue: r.f.queue,
    task: r.name,
    reason,
    error,
    attempts: r.attempt,
    failedAt: record.finishedAt,
    message: r.raw ?? JSON.stringify(r.f.fields),
  };
  return {
    fetched: r.f,
    local: r.local,
    parked: r.parked,
    record,
    outcome: 'dead',
    payload: JSON.stringify(letter),
  };
}

/** Runs one attempt of a fetched entry and says what should become of it. Never throws. */
export async function runAttempt(app: Tasuki, f: Fetched, s: RunnerSettings): Promise<Attempt> {
  const r: Run = {
    f,
    raw: fieldValue(f.fields, MESSAGE_FIELD),
    local: f.entry,
    parked: false,
    name: '?',
    attempt: 1,
    startedAt: Date.now(),
    worker: s.worker,
  };
  let msg: TaskMessage;
  try {
    msg = decodeMessage(r.raw);
  } catch (err) {
    return dead(r, 'undecodable', err);
  }
  f.message = msg;
  r.name = msg.name;
  r.attempt = msg.attempt ?? 1;
  if (msg.id !== undefined) {
    r.local = msg.id;
    r.parked = msg.id !== f.entry;
  }
  if (f.deliveries > s.maxDeliveries) {
    return dead(
      r,
      'max-deliveries',
      new TasukiError(
        'E_LOST',
        `delivered ${f.deliveries} times without finishing (its workers died or lost it each time); limit is ${s.maxDeliveries}`,
      ),
    );
  }
  if (msg.expiresAt !== undefined && msg.expiresAt < r.startedAt) {
    const error = toStoredError(
      new TasukiError(
        'E_EXPIRED',
        `not started before its expiry at ${new Date(msg.expiresAt).toISOString()}; not run`,
      ),
    );
    const record = recordOf(r, 'expired');
    record.error = error;
    return done(r, record);
  }
  const task = app.getTaskDefinition(msg.name);
  if (!task) return dead(r, 'unknown-task', new UnknownTaskError(msg.name, app.taskNames()));
  let checked = validate(task.definition.schema, msg.args);
  if (checked instanceof Promise) checked = await checked;
  if (!checked.ok) return dead(r, 'invalid-args', new TaskArgsError(msg.name, checked.issues));

  try {
    const result = await callHandler(task, checked.value, f, r, s.log);
    const record = recordOf(r, 'succeeded');
    record.result = result;
    return done(r, record);
  } catch (err) {
    const def = task.definition;
    const maxAttempts = def.maxAttempts ?? 1;
    if (!isRetryable(def.retryOn, err)) return dead(r, 'not-retryable', err);
    if (r.attempt >= maxAttempts) return dead(r, 'max-attempts', err);
    const delay =
      (err instanceof RetryLater ? err.delayMs : undefined) ?? backoffDelay(def.backoff, r.attempt);
    const due = Date.now() + delay;
    const payload = encodeMessage(msg.name, JSON.stringify(msg.args), {
      id: r.local,
      attempt: r.attempt + 1,
      expiresAt: msg.expiresAt,
    });
    const record = recordOf(r, 'retrying');
    record.error = toStoredError(err);
    record.retryAt = due;
    return { fetched: f, local: r.local, parked: true, record, outcome: 'retry', due, payload };
  }
}

/** Aborts a held entry's handler (now, or as soon as it looks at its signal). */
export function abortAttempt(f: Fetched, reason: Error): void {
  f.abortReason = reason;
  f.controller?.abort(reason);
}

function signalOf(f: Fetched): AbortSignal {
  if (!f.controller) {
    f.controller = new AbortController();
    if (f.abortReason) f.controller.abort(f.abortReason);
  }
  return f.controller.signal;
}

/**
 * What a handler gets as `ctx`. A class, so that making one per task is cheap; the id string, the
 * AbortController and the child logger are made only if the handler asks for them.
 */
class Context implements TaskContext {
  private taskLog: Logger | undefined;

  constructor(
    private readonly f: Fetched,
    private readonly r: Run,
    private readonly baseLog: Logger,
  ) {}

  get id(): string {
    return formatTaskId(this.r.local, this.f.queue);
  }

  get queue(): string {
    return this.f.queue;
  }

  get attempt(): number {
    return this.r.attempt;
  }

  get signal(): AbortSignal {
    return signalOf(this.f);
  }

  get log(): Logger {
    return (this.taskLog ??= this.baseLog.child({
      taskId: this.id,
      task: this.r.name,
      queue: this.f.queue,
      attempt: this.r.attempt,
    }));
  }
}

/** Calls the handler under the task's soft and hard time limits. */
function callHandler(task: Task, args: unknown, f: Fetched, r: Run, log: Logger): unknown {
  const def = task.definition;
  const ctx = new Context(f, r, log);
  const hard = def.timeLimit === undefined ? undefined : toMs(def.timeLimit);
  const soft = def.softTimeLimit === undefined ? undefined : toMs(def.softTimeLimit);
  if (hard === undefined && soft === undefined) return def.handler(args, ctx);
  return limited(def.handler(args, ctx), f, soft, hard);
}

async function limited(
  result: unknown,
  f: Fetched,
  soft: number | undefined,
  hard: number | undefined,
): Promise<unknown> {
  const timers: NodeJS.Timeout[] = [];
  try {
    if (soft !== undefined)
      timers.push(setTimeout(() => abortAttempt(f, new TimeLimitError('soft', soft)), soft));
    const run = Promise.resolve(result);
    if (hard === undefined) return await run;
    // Past the hard limit the attempt is failed and the slot freed; the handler, if it ignores the
    // signal, finishes in the background and its outcome is dropped.
    run.catch(() => undefined);
    return await Promise.race([
      run,
      new Promise<never>((_, reject) => {
        timers.push(
          setTimeout(() => {
            const err = new TimeLimitError('hard', hard);
            abortAttempt(f, err);
            reject(err);
          }, hard),
        );
      }),
    ]);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
