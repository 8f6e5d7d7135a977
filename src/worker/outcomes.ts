/** What the worker does with each finished attempt besides recording it: count it, log it. */
import type { Logger } from '../log/logger.js';
import { formatTaskId } from '../wire/ids.js';
import { decodeMessage, messageOf, reencodeMessage } from '../wire/message.js';
import type { HandBack } from '../broker/broker.js';
import type { Held } from './holdings.js';
import type { Attempt } from './runner.js';

/** Attempts finished by a worker, by what became of them. */
export interface OutcomeCounts {
  succeeded: number;
  failed: number;
  retried: number;
  expired: number;
  /** Left for another worker (an unknown task, a newer message format). */
  released: number;
  /** Held back by a rate limit until its slot (not run, no attempt used). */
  limited: number;
  /**
   * Finished here after another worker had taken the task over (this one was presumed dead: paused,
   * or cut off from Redis): the outcome was discarded, not recorded (fenced attempts), and is not
   * counted above.
   */
  discarded: number;
  /** Cancelled (`app.cancel`) while running or before it started here: recorded `cancelled`. */
  cancelled: number;
  /** Revoked (`app.revoke`) after this worker had fetched it: dropped, not run (or stopped). */
  revoked: number;
}

/** Counts with nothing counted yet. */
export function noOutcomes(): OutcomeCounts {
  return {
    succeeded: 0,
    failed: 0,
    retried: 0,
    expired: 0,
    released: 0,
    limited: 0,
    discarded: 0,
    cancelled: 0,
    revoked: 0,
  };
}

/** Counts a finished attempt by its outcome (`by` -1 takes it back out: its outcome was discarded). */
export function countOutcome(counts: OutcomeCounts, attempt: Attempt, by: 1 | -1 = 1): void {
  const state = attempt.record.state;
  if (attempt.outcome === 'release') counts.released += by;
  else if (attempt.outcome === 'retry') counts.retried += by;
  else if (attempt.outcome === 'defer') counts.limited += by;
  else if (state === 'succeeded') counts.succeeded += by;
  else if (state === 'expired') counts.expired += by;
  else if (state === 'cancelled') counts.cancelled += by;
  else counts.failed += by;
}

/**
 * Outcomes the broker did not record because another worker took their tasks over while they ran
 * here (fenced attempts): taken back out of the counts, counted as discarded, and said in the log.
 */
export function discardOutcomes(
  counts: OutcomeCounts,
  log: Logger,
  attempts: readonly Attempt[],
  stale: ReadonlySet<string>,
): void {
  for (const a of attempts) {
    if (!stale.has(a.held.entry)) continue;
    countOutcome(counts, a, -1);
    counts.discarded++;
    log.warn(
      { taskId: formatTaskId(a.local, a.held.queue), entry: a.held.entry, outcome: a.record.state },
      'discarded the outcome of a task another worker took over while it ran here ' +
        '(this worker was presumed dead: paused or cut off from Redis past claimIdle); it was not recorded',
    );
  }
}

/** One log line per finished attempt; succeeded lines (info) build no fields unless info is on. */
export function logOutcome(log: Logger, logInfo: boolean, attempt: Attempt): void {
  const held = attempt.held;
  const r = attempt.record;
  // Log fields are built only when the line is written (succeeded lines are at info).
  if (r.state === 'succeeded' && !logInfo) return;
  const fields = {
    taskId: formatTaskId(attempt.local, held.queue),
    task: r.task,
    queue: held.queue,
    attempt: r.attempt,
    durationMs: r.finishedAt - r.startedAt,
  };
  if (attempt.outcome === 'release') {
    log.warn(
      { ...fields, reason: r.reason, error: r.error, deliveries: held.deliveries },
      'task left for another worker (this one cannot run it); dead-lettered after releaseFor',
    );
  } else if (attempt.outcome === 'defer') {
    // Routine under a rate limit, and possibly many per second: debug only.
    log.debug({ ...fields, slotAt: attempt.due }, 'task held back by its rate limit until its slot');
  } else if (attempt.outcome === 'retry') {
    log.warn({ ...fields, error: r.error, retryAt: r.retryAt }, 'task failed; will retry');
  } else if (r.state === 'succeeded') {
    log.info(fields, 'task succeeded');
  } else if (r.state === 'expired') {
    log.warn(fields, 'task expired before it started; not run');
  } else if (r.state === 'cancelled') {
    log.warn({ ...fields, by: r.by }, 'task cancelled; not retried');
  } else {
    log.error({ ...fields, error: r.error, reason: r.reason }, 'task failed; moved to dead letters');
  }
}

/**
 * The messages that hand held deliveries back to their queues, grouped by queue, each carrying its
 * task id. Deliveries that cannot be decoded (or are in a newer format) are left out: they stay
 * pending, and whoever reclaims them deals with them.
 */
export function handBackMessages(list: readonly Held[]): {
  byQueue: Map<string, HandBack[]>;
  ids: string[];
  taken: Held[];
} {
  const byQueue = new Map<string, HandBack[]>();
  const ids: string[] = [];
  const taken: Held[] = [];
  for (const held of list) {
    let msg = held.message;
    if (!msg) {
      try {
        msg = decodeMessage(messageOf(held.fields));
      } catch {
        continue;
      }
    }
    const id = msg.id ?? held.entry;
    const message = reencodeMessage(msg, {
      id,
      attempt: msg.attempt,
      expiresAt: msg.expiresAt,
      slot: msg.slot,
      storeResult: msg.storeResult,
      canvas: msg.canvas,
    });
    const tasks = byQueue.get(held.queue) ?? [];
    tasks.push({ entry: held.entry, id, message });
    byQueue.set(held.queue, tasks);
    ids.push(formatTaskId(id, held.queue));
    taken.push(held);
  }
  return { byQueue, ids, taken };
}
