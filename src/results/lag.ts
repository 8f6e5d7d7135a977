import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import { GROUP } from '../wire/fields.js';

/**
 * How long the oldest task no worker has taken yet has waited, ms (0 when none waits): the first
 * entry after the consumer group's last delivered id (the whole stream before any worker served
 * the queue). Three commands, whatever the queue's length — for each of the queue's streams (its
 * priority levels' too, when it has them): the longest wait of any level.
 */
export async function queueLag(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  now = Date.now(),
): Promise<number> {
  try {
    let lag = 0;
    for (const stream of queueStreams(keys, queue)) {
      if (!(await redis.exists(stream))) continue;
      let start = '-';
      const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      for (const g of groups) {
        const i = g.indexOf('name');
        if (g[i + 1] !== GROUP) continue;
        const last = g[g.indexOf('last-delivered-id') + 1];
        if (typeof last === 'string' && last !== '0-0') start = `(${last}`;
      }
      const next = await redis.xrange(stream, start, '+', 'COUNT', 1);
      const id = next[0]?.[0];
      if (id !== undefined) lag = Math.max(lag, now - Number(id.slice(0, id.indexOf('-'))));
    }
    return lag;
  } catch (err) {
    throw redisError(`reading the lag of queue "${queue}"`, err, { wrote: false });
  }
}
