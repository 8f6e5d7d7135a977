import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { GROUP } from '../wire/fields.js';

/** How many tasks a queue holds, by where they are. */
export interface QueueStats {
  queue: string;
  /** Entries in the stream: waiting plus held by workers. */
  inStream: number;
  /** Entries handed to a worker and not finished yet. */
  active: number;
  /** Waiting for a worker: `inStream - active`. */
  waiting: number;
  /** Delayed tasks and retries waiting for their time. */
  delayed: number;
  /** Dead letters kept. */
  dead: number;
  /** Paused (`app.pause`): workers take no new task from it. */
  paused: boolean;
}

/**
 * Counts a queue's tasks with one pipeline (all keys of a queue share one cluster slot). Any failed
 * command is an `E_REDIS` error — a count Redis did not give is not 0 — except a missing consumer
 * group (NOGROUP): no worker has served the queue yet, so nothing is active.
 */
export async function queueStats(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
): Promise<QueueStats> {
  const what = `counting the tasks of queue "${queue}"`;
  const stream = keys.stream.key({ queue });
  let replies: [Error | null, unknown][] | null;
  try {
    replies = await redis
      .pipeline()
      .xlen(stream)
      .xpending(stream, GROUP)
      .zcard(keys.delayed.key({ queue }))
      .xlen(keys.dead.key({ queue }))
      .exists(keys.paused.key({ queue }))
      .exec();
  } catch (err) {
    throw redisError(what, err, { wrote: false });
  }
  const value = (i: number): unknown => {
    const [err, v] = replies?.[i] ?? [new Error('no reply'), undefined];
    if (err) throw redisError(what, err, { wrote: false });
    return v;
  };
  const inStream = Number(value(0));
  let active = 0;
  const [pendingErr, pending] = replies?.[1] ?? [null, undefined];
  if (pendingErr && !/^NOGROUP\b/.test(pendingErr.message))
    throw redisError(what, pendingErr, { wrote: false });
  if (Array.isArray(pending)) active = Number(pending[0]);
  return {
    queue,
    inStream,
    active,
    waiting: Math.max(0, inStream - active),
    delayed: Number(value(2)),
    dead: Number(value(3)),
    paused: Number(value(4)) === 1,
  };
}
