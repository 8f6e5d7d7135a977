/**
 * The worker's task events: one per finished attempt, built only when someone listens (the worker
 * checks `listening` first, so an unobserved worker allocates nothing here). The shapes are the one
 * event map's (src/events/event-map.ts), the same an app subscription sees across processes.
 */
import { eventOfRecord, type TaskEvent, type TaskEventType, type TaskEvents } from '../events/event-map.js';
import type { Held } from './holdings.js';
import type { Attempt } from './attempt.js';
import { formatTaskId } from '../wire/ids.js';

/** Gives the event of a finished attempt to the worker's listeners. */
export function emitAttempt(events: TaskEvents, attempt: Attempt): void {
  const event = attemptEvent(attempt);
  if (event) events.emitTask(event);
}

/**
 * Gives `started` for a delivery whose attempt began, once its message is decoded (an undecodable
 * one never starts: it is dead-lettered).
 */
export function emitStarted(events: TaskEvents, held: Held, worker: string): void {
  const m = held.message;
  if (m === undefined) return;
  events.emit('started', {
    type: 'started',
    id: formatTaskId(m.id ?? held.entry, held.queue),
    queue: held.queue,
    task: m.name,
    attempt: m.attempt ?? 1,
    worker,
    startedAt: Date.now(),
  });
}

function attemptEvent(attempt: Attempt): TaskEvent | undefined {
  const r = attempt.record;
  const queue = attempt.held.queue;
  if (attempt.outcome === 'release' || attempt.outcome === 'defer') {
    const base = {
      id: formatTaskId(attempt.local, queue),
      queue,
      task: r.task,
      attempt: r.attempt,
      worker: r.worker,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
    };
    return attempt.outcome === 'release'
      ? { ...base, type: 'released', error: r.error ?? { name: 'Error', message: r.reason ?? 'released' } }
      : { ...base, type: 'limited', slotAt: attempt.due ?? r.finishedAt };
  }
  return eventOfRecord(r, attempt.local, queue);
}

/** The event type an attempt's outcome is (what its event's `type` would be): for run spans. */
export function outcomeOf(a: Attempt): TaskEventType {
  if (a.outcome === 'release') return 'released';
  if (a.outcome === 'defer') return 'limited';
  switch (a.record.state) {
    case 'succeeded':
      return 'succeeded';
    case 'retrying':
      return 'retried';
    case 'expired':
      return 'expired';
    default:
      return 'dead';
  }
}
