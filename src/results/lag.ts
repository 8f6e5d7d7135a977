import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { GROUP } from '../wire/fields.js';

/**
 * How long the oldest task no worker has taken yet has waited, ms (0 when none waits): the first
 * entry after the consumer group's last delivered id (the whole stream before any worker served
 * the queue). Three commands, whatever the queue's length.
 */
export async function queueLag(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  now = Date.now(),
): Promise<number> {
  const stream = keys.stream.key({ queue });
  try {
    let start = '-';
    const groups = (await redis.exists(stream)) ? ((await redis.xinfo('GROUPS', stream)) as unknown[][]) : [];
    for (const g of groups) {
      const i = g.indexOf('name');
      if (g[i + 1] !== GROUP) continue;
      const last = g[g.indexOf('last-delivered-id') + 1];
      if (typeof last === 'string' && last !== '0-0') start = `(${last}`;
    }
    const next = await redis.xrange(stream, start, '+', 'COUNT', 1);
    const id = next[0]?.[0];
    return id === undefined ? 0 : Math.max(0, now - Number(id.slice(0, id.indexOf('-'))));
  } catch (err) {
    throw redisError(`reading the lag of queue "${queue}"`, err, { wrote: false });
  }
}
