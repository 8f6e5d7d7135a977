import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import { levelOfRef } from '../wire/priority.js';
import type { PayloadClaim } from '../wire/message.js';
import { parseTaskId } from '../wire/ids.js';
import { parseCompletion } from '../wire/completion.js';
import * as scripts from '../scripts/catalogue.js';
import { GROUP } from '../wire/fields.js';
import { decodeRecord, type StoredError, type TaskState } from '../wire/record.js';

/** What {@link lookupTask} knows about a task. */
export interface TaskInfo {
  id: string;
  queue: string;
  state: TaskState;
  /** Task name (known once a worker has recorded the task). */
  task?: string | undefined;
  attempt?: number | undefined;
  /** Worker (or consumer) that ran or is running it. */
  worker?: string | undefined;
  /** Times a worker has been handed the task (active tasks). */
  deliveries?: number | undefined;
  /** Priority level of a queued or active task above level 0 (absent: level 0). */
  priority?: number | undefined;
  dueAt?: number | undefined;
  startedAt?: number | undefined;
  finishedAt?: number | undefined;
  result?: unknown;
  /**
   * A result kept in the payload store (too big for Redis): its claim. `app.getTask()` loads it into
   * `result` and leaves this out; {@link lookupTask} alone does not load it.
   */
  resultClaim?: PayloadClaim | undefined;
  error?: StoredError | undefined;
}

/**
 * Looks a task up by id in one script call. `null` when tasuki knows nothing of it: never
 * enqueued, or finished longer ago than the result TTL. A failed call is an `E_REDIS` error (Redis
 * unreachable, or what it answered), never a raw client error.
 */
export async function lookupTask(
  redis: RedisConnection,
  keys: TasukiKeys,
  id: string,
): Promise<TaskInfo | null> {
  const { local, queue } = parseTaskId(id);
  let reply: scripts.LookupReply;
  try {
    reply = await scripts.run(
      redis,
      scripts.lookup(
        {
          result: keys.result.key({ queue, task: local }),
          parked: keys.parked.key({ queue }),
          delayed: keys.delayed.key({ queue }),
          streams: queueStreams(keys, queue),
          tickets: keys.tickets.key({ queue }),
          purges: keys.purges.key({ queue }),
        },
        { id: local, group: GROUP },
      ),
    );
  } catch (err) {
    throw redisError(`lookup of task ${id}`, err, { wrote: false });
  }
  switch (reply[0]) {
    case 'record': {
      const r = decodeRecord(reply[1]);
      return {
        id,
        queue,
        state: r.state,
        task: r.task,
        attempt: r.attempt,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        ...('result' in r ? { result: r.result } : {}),
        ...(r.resultClaim ? { resultClaim: r.resultClaim } : {}),
        ...(r.error ? { error: r.error } : {}),
      };
    }
    case 'delayed':
      return { id, queue, state: 'delayed', dueAt: Number(reply[1]) };
    case 'queued':
      return { id, queue, state: 'queued', ...levelOf(reply[1]) };
    case 'active':
      return {
        id,
        queue,
        state: 'active',
        worker: reply[2],
        deliveries: Number(reply[3]),
        ...levelOf(reply[1]),
      };
    default:
      return null;
  }
}

/** `{ priority }` for an entry of a level stream; nothing for the queue's own (level 0). */
function levelOf(ref: string): { priority?: number } {
  const level = levelOfRef(ref);
  return level > 0 ? { priority: level } : {};
}

/** Completion events {@link findCompletion} reads per call, and calls at most. */
const COMPLETION_PAGE = 500;
const COMPLETION_PAGES = 20;
/** How far before a task's id time the search starts: ids of delayed tasks come from a client's clock. */
const CLOCK_SKEW_MS = 5000;

/**
 * A finished task's encoded record from its queue's completion stream, for a task that keeps none
 * under its result key (`storeResult: false`) and finished before its waiter began to follow the
 * stream. Reads from the time in the task's id (entry ids and delayed ids start with one), at most
 * {@link COMPLETION_PAGES} pages; `undefined` when it is not there (or the event was trimmed).
 */
export async function findCompletion(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  local: string,
): Promise<string | undefined> {
  const ms = Number(local.slice(0, local.indexOf('-')));
  if (!Number.isSafeInteger(ms) || ms <= 0) return undefined;
  let start = `${Math.max(0, ms - CLOCK_SKEW_MS)}-0`;
  for (let page = 0; page < COMPLETION_PAGES; page++) {
    const entries = await redis.xrange(keys.events.key({ queue }), start, '+', 'COUNT', COMPLETION_PAGE);
    for (const [, fields] of entries) {
      const { ids, records } = parseCompletion(fields);
      const i = ids.indexOf(local);
      if (i >= 0) return records?.[i] || undefined;
    }
    const last = entries[entries.length - 1];
    if (entries.length < COMPLETION_PAGE || !last) return undefined;
    start = `(${last[0]}`;
  }
  return undefined;
}
