import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import { GROUP } from '../wire/fields.js';

/** How many tasks a queue holds, by where they are. */
export interface QueueStats {
  queue: string;
  /** Entries in the stream (and its priority levels' streams): waiting plus held by workers. */
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
  const streams = queueStreams(keys, queue);
  let replies: [Error | null, unknown][] | null;
  try {
    const pipe = redis
      .pipeline()
      .zcard(keys.delayed.key({ queue }))
      .xlen(keys.dead.key({ queue }))
      .exists(keys.paused.key({ queue }));
    // The queue's stream and its priority levels' (an absent level counts 0).
    for (const stream of streams) pipe.xlen(stream).xpending(stream, GROUP);
    replies = await pipe.exec();
  } catch (err) {
    throw redisError(what, err, { wrote: false });
  }
  const value = (i: number): unknown => {
    const [err, v] = replies?.[i] ?? [new Error('no reply'), undefined];
    if (err) throw redisError(what, err, { wrote: false });
    return v;
  };
  let inStream = 0;
  let active = 0;
  streams.forEach((_, s) => {
    inStream += Number(value(3 + 2 * s));
    const [pendingErr, pending] = replies?.[4 + 2 * s] ?? [null, undefined];
    if (pendingErr && !/^NOGROUP\b/.test(pendingErr.message))
      throw redisError(what, pendingErr, { wrote: false });
    if (Array.isArray(pending)) active += Number(pending[0]);
  });
  return {
    queue,
    inStream,
    active,
    waiting: Math.max(0, inStream - active),
    delayed: Number(value(0)),
    dead: Number(value(1)),
    paused: Number(value(2)) === 1,
  };
}
