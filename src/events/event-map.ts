/**
 * The one map of task events. A worker emits them in process (`worker.on('succeeded', ...)`), the
 * app emits `enqueued` for the tasks it writes (`app.enqueueEvents`), an app subscription emits the
 * outcomes of every worker's tasks across processes (`app.subscribe()`), and the app option
 * `events: true` publishes them on the queues' channels (src/channels/lifecycle.ts). Metrics, the
 * dashboard and tracing read these types — so a name or a field means the same thing wherever it is
 * seen.
 */
import type { DeadReason, StoredError, TaskRecord } from '../wire/record.js';
import { formatTaskId } from '../wire/ids.js';
import { TypedEmitter } from './emitter.js';

/** What every task event says: which task, which attempt, who ran it and when. */
export interface TaskEventBase {
  /** Task id, `<local>@<queue>`. */
  id: string;
  queue: string;
  /** Task name. */
  task: string;
  /** The attempt this event is about (the first is 1). */
  attempt: number;
  /** Name of the worker that ran the attempt. */
  worker: string;
  /** When the attempt started and finished (ms since the epoch). */
  startedAt: number;
  finishedAt: number;
}

/** The handler returned. `result` is `undefined` when the result went to the payload store. */
export interface SucceededEvent extends TaskEventBase {
  type: 'succeeded';
  result?: unknown;
}

/** The attempt failed and the task will run again at `retryAt`. */
export interface RetriedEvent extends TaskEventBase {
  type: 'retried';
  error: StoredError;
  retryAt: number;
}

/** The task will not run again: it failed its last attempt or could not run; see the dead letters. */
export interface DeadEvent extends TaskEventBase {
  type: 'dead';
  error: StoredError;
  reason: DeadReason;
}

/** The task's expiry passed before it started; it did not run. */
export interface ExpiredEvent extends TaskEventBase {
  type: 'expired';
}

/** The task was cancelled (`app.cancel`) while it ran or before it started; it is not retried. */
export interface CancelledEvent extends TaskEventBase {
  type: 'cancelled';
  error: StoredError;
  /** Who cancelled it. */
  by?: string | undefined;
}

/** (Subscriptions only: workers never record one.) The task was revoked (`app.revoke`); it does not run. */
export interface RevokedEvent extends TaskEventBase {
  type: 'revoked';
  error: StoredError;
  /** Who revoked it. */
  by?: string | undefined;
}

/** (Worker only.) This worker cannot run the task (unknown task, newer format) and left it for another. */
export interface ReleasedEvent extends TaskEventBase {
  type: 'released';
  error: StoredError;
}

/** (Worker only.) A rate limit held the task back until `slotAt`; it did not run, no attempt used. */
export interface LimitedEvent extends TaskEventBase {
  type: 'limited';
  slotAt: number;
}

/** (App only.) A task was written to its queue by this process. */
export interface EnqueuedEvent {
  type: 'enqueued';
  /** Task id, `<local>@<queue>`. */
  id: string;
  queue: string;
  task: string;
  /** When the write was acknowledged (ms since the epoch). */
  at: number;
}

/** (Worker only.) An attempt started: the task's handler is about to run. */
export interface StartedEvent {
  type: 'started';
  id: string;
  queue: string;
  task: string;
  attempt: number;
  worker: string;
  startedAt: number;
}

/** Any event of what became of an attempt (what `task` listeners get). */
export type TaskEvent =
  | SucceededEvent
  | RetriedEvent
  | DeadEvent
  | ExpiredEvent
  | CancelledEvent
  | RevokedEvent
  | ReleasedEvent
  | LimitedEvent;

/** Names of task events, by what became of an attempt. */
export type TaskEventType = TaskEvent['type'];

/**
 * Every event name and what its listeners get. `failed` is every failed attempt (a `retried` or a
 * `dead` event, given to both names); `task` is every outcome of an attempt (not `enqueued` or
 * `started`, which say nothing of an outcome).
 */
export interface TaskEventMap {
  enqueued: EnqueuedEvent;
  started: StartedEvent;
  succeeded: SucceededEvent;
  retried: RetriedEvent;
  dead: DeadEvent;
  expired: ExpiredEvent;
  cancelled: CancelledEvent;
  revoked: RevokedEvent;
  released: ReleasedEvent;
  limited: LimitedEvent;
  failed: RetriedEvent | DeadEvent;
  task: TaskEvent;
}

/** Emits task events; a {@link Worker} is one, and so is an app subscription. */
export class TaskEvents extends TypedEmitter<TaskEventMap> {
  /** @internal Gives `event` to the listeners of its type, of `failed` when it is one, and of `task`. */
  emitTask(event: TaskEvent): void {
    this.emit(event.type, event);
    if (event.type === 'retried' || event.type === 'dead') this.emit('failed', event);
    this.emit('task', event);
  }
}

/**
 * The event a finished task's record stands for (records are what workers store and announce):
 * `succeeded`, `retried` (state `retrying`), `dead` (state `failed`), `expired`, `cancelled` or
 * `revoked`; `undefined` for a
 * record of a task that has not finished an attempt.
 */
export function eventOfRecord(r: TaskRecord, local: string, queue: string): TaskEvent | undefined {
  // One object literal per event (no spread of a shared base): this runs once per task while
  // anyone listens, so it allocates one object and copies nothing twice.
  const id = formatTaskId(local, queue);
  switch (r.state) {
    case 'succeeded':
      return {
        type: 'succeeded',
        id,
        queue,
        task: r.task,
        attempt: r.attempt,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        result: r.result,
      };
    case 'retrying':
      return {
        type: 'retried',
        id,
        queue,
        task: r.task,
        attempt: r.attempt,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        error: errorOf(r),
        retryAt: r.retryAt ?? r.finishedAt,
      };
    case 'failed':
      return {
        type: 'dead',
        id,
        queue,
        task: r.task,
        attempt: r.attempt,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        error: errorOf(r),
        reason: r.reason ?? 'max-attempts',
      };
    case 'expired':
      return {
        type: 'expired',
        id,
        queue,
        task: r.task,
        attempt: r.attempt,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
      };
    case 'cancelled':
    case 'revoked':
      return {
        type: r.state,
        id,
        queue,
        task: r.task,
        attempt: r.attempt,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        error: errorOf(r),
        by: r.by,
      };
    default:
      return undefined;
  }
}

function errorOf(r: TaskRecord): StoredError {
  return r.error ?? { name: 'Error', message: r.state };
}

/** The events a producing app emits (`app.enqueueEvents`). */
export type EnqueueEventMap = Pick<TaskEventMap, 'enqueued'>;
