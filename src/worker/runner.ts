import type { Logger } from '../log/logger.js';
import { TaskArgsError, TimeLimitError, UnknownTaskError, TasukiError } from '../errors.js';
import type { Tasuki } from '../queue/app.js';
import { formatTaskId } from '../queue/ids.js';
import { decodeMessage, encodeMessage, MESSAGE_FIELD, type TaskMessage } from '../queue/message.js';
import { validate } from '../queue/schema.js';
import type { Task, TaskContext } from '../queue/task.js';
import { toStoredError, type DeadReason, type StoredError, type TaskRecord } from '../results/record.js';
import { toMs } from '../util/duration.js';
import { backoffDelay, isRetryable, RetryLater } from './retry.js';

/** A stream entry a worker holds. */
export interface Fetched {
  queue: string;
  entry: string;
  fields: string[];
  /** Times the entry has been delivered (known for reclaimed entries; 1 otherwise). */
  deliveries: number;
  /** Set while its handler runs: aborts `ctx.signal`. */
  controller?: AbortController;
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

/** Runs one attempt of a fetched entry and says what should become of it. Never throws. */
export async function runAttempt(app: Tasuki, f: Fetched, s: RunnerSettings): Promise<Attempt> {
  const startedAt = Date.now();
  const raw = fieldValue(f.fields, MESSAGE_FIELD);
  let local = f.entry;
  let parked = false;
  let name = '?';
  let attempt = 1;

  const base = (): Omit<TaskRecord, 'state'> => ({
    task: name,
    attempt,
    worker: s.worker,
    startedAt,
    finishedAt: Date.now(),
  });
  const dead = (reason: DeadReason, err: unknown): Attempt => {
    const error = toStoredError(err);
    const record: TaskRecord = { ...base(), state: 'failed', error, reason };
    const letter: StoredDeadLetter = {
      id: local,
      queue: f.queue,
      task: name,
      reason,
      error,
      attempts: attempt,
      failedAt: record.finishedAt,
      message: raw ?? JSON.stringify(f.fields),
    };
    return { fetched: f, local, parked, record, outcome: 'dead', payload: JSON.stringify(letter) };
  };

  let msg: TaskMessage;
  try {
    msg = decodeMessage(raw);
  } catch (err) {
    return dead('undecodable', err);
  }
  f.message = msg;
  name = msg.name;
  attempt = msg.attempt ?? 1;
  if (msg.id !== undefined) {
    local = msg.id;
    parked = msg.id !== f.entry;
  }
  if (f.deliveries > s.maxDeliveries) {
    return dead(
      'max-deliveries',
      new TasukiError(
        'E_LOST',
        `delivered ${f.deliveries} times without finishing (its workers died or lost it each time); limit is ${s.maxDeliveries}`,
      ),
    );
  }
  if (msg.expiresAt !== undefined && msg.expiresAt < startedAt) {
    const error = toStoredError(
      new TasukiError(
        'E_EXPIRED',
        `not started before its expiry at ${new Date(msg.expiresAt).toISOString()}; not run`,
      ),
    );
    return { fetched: f, local, parked, record: { ...base(), state: 'expired', error }, outcome: 'done' };
  }
  const task = app.getTaskDefinition(msg.name);
  if (!task) return dead('unknown-task', new UnknownTaskError(msg.name, app.taskNames()));
  const checked = await validate(task.definition.schema, msg.args);
  if (!checked.ok) return dead('invalid-args', new TaskArgsError(msg.name, checked.issues));

  try {
    const result = await callHandler(task, checked.value, f, local, attempt, s.log);
    return { fetched: f, local, parked, record: { ...base(), state: 'succeeded', result }, outcome: 'done' };
  } catch (err) {
    const def = task.definition;
    const maxAttempts = def.maxAttempts ?? 1;
    if (!isRetryable(def.retryOn, err)) return dead('not-retryable', err);
    if (attempt >= maxAttempts) return dead('max-attempts', err);
    const delay = (err instanceof RetryLater ? err.delayMs : undefined) ?? backoffDelay(def.backoff, attempt);
    const due = Date.now() + delay;
    const payload = encodeMessage(msg.name, JSON.stringify(msg.args), {
      id: local,
      attempt: attempt + 1,
      expiresAt: msg.expiresAt,
    });
    const record: TaskRecord = { ...base(), state: 'retrying', error: toStoredError(err), retryAt: due };
    return { fetched: f, local, parked: true, record, outcome: 'retry', due, payload };
  }
}

/** Calls the handler under the task's soft and hard time limits. */
async function callHandler(
  task: Task,
  args: unknown,
  f: Fetched,
  local: string,
  attempt: number,
  log: Logger,
): Promise<unknown> {
  const def = task.definition;
  const id = formatTaskId(local, f.queue);
  const controller = new AbortController();
  f.controller = controller;
  let taskLog: Logger | undefined;
  const ctx: TaskContext = {
    id,
    queue: f.queue,
    attempt,
    signal: controller.signal,
    get log() {
      return (taskLog ??= log.child({ taskId: id, task: task.name, queue: f.queue, attempt }));
    },
  };
  const hard = def.timeLimit === undefined ? undefined : toMs(def.timeLimit);
  const soft = def.softTimeLimit === undefined ? undefined : toMs(def.softTimeLimit);
  if (hard === undefined && soft === undefined) return await def.handler(args, ctx);

  const timers: NodeJS.Timeout[] = [];
  try {
    if (soft !== undefined)
      timers.push(setTimeout(() => controller.abort(new TimeLimitError('soft', soft)), soft));
    const run = Promise.resolve().then(() => def.handler(args, ctx));
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
            controller.abort(err);
            reject(err);
          }, hard),
        );
      }),
    ]);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
