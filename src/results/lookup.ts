import type { Redis } from 'ioredis';
import { redisError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { PayloadClaim } from '../wire/message.js';
import { parseTaskId } from '../wire/ids.js';
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
export async function lookupTask(redis: Redis, keys: TasukiKeys, id: string): Promise<TaskInfo | null> {
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
          stream: keys.stream.key({ queue }),
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
      return { id, queue, state: 'queued' };
    case 'active':
      return { id, queue, state: 'active', worker: reply[2], deliveries: Number(reply[3]) };
    default:
      return null;
  }
}
