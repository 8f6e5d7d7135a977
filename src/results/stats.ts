import type { Redis } from 'ioredis';
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
}

/** Counts a queue's tasks with one pipeline (all keys of a queue share one cluster slot). */
export async function queueStats(redis: Redis, keys: TasukiKeys, queue: string): Promise<QueueStats> {
  const stream = keys.stream.key({ queue });
  const replies = await redis
    .pipeline()
    .xlen(stream)
    .xpending(stream, GROUP)
    .zcard(keys.delayed.key({ queue }))
    .xlen(keys.dead.key({ queue }))
    .exec();
  const value = (i: number): unknown => {
    const [err, v] = replies?.[i] ?? [null, 0];
    // A queue no worker has served yet has no consumer group: nothing is active.
    return err ? 0 : v;
  };
  const inStream = Number(value(0));
  const pending = value(1);
  const active = Array.isArray(pending) ? Number(pending[0]) : 0;
  return {
    queue,
    inStream,
    active,
    waiting: Math.max(0, inStream - active),
    delayed: Number(value(2)),
    dead: Number(value(3)),
  };
}
