import type { RedisConnection } from '../connection/redis.js';
import { z } from 'zod';
import { TasukiError } from '../errors.js';
import { fenceSet, registerScripts, run } from '../scripts/catalogue.js';
import type { Duration } from '../util/duration.js';
import { parseOptions } from '../util/options.js';
import { StaleTokenError } from './errors.js';
import { tokenText } from './token.js';
import { wholeMs } from './options.js';
import { isOom } from './timing.js';

const fencedSetSchema = z.object({ ttl: wholeMs().optional() }).strict();

/** A value written through {@link fencedSet}, with the token of its last writer. */
export interface FencedValue {
  value: string;
  token: bigint;
}

/**
 * Redis compare-and-set by fencing token: writes `value` to the hash `key` (fields `v` and `fence`)
 * only if `token` is strictly greater than the token stored with it, in one Lua script. A stale token
 * throws {@link StaleTokenError} and writes nothing. `key` should come from your keyspace registry
 * (`space.define({ type: 'hash', codec: 'hash: v = value, fence = token', ... })`).
 *
 * @param options.ttl - TTL the key gets on each write (default: leave it as it is).
 * @throws `E_REDIS` when Redis is at maxmemory (nothing written), {@link StaleTokenError} for a stale token.
 */
export async function fencedSet(
  redis: RedisConnection,
  key: string,
  token: bigint,
  value: string,
  options: { ttl?: Duration } = {},
): Promise<void> {
  const t = tokenText(token);
  const ttlMs = parseOptions(fencedSetSchema, options, 'fencedSet options', 'E_OPTIONS').ttl ?? 0;
  registerScripts(redis);
  let reply: [0 | 1, string];
  try {
    reply = await run(redis, fenceSet({ value: key }, { token: t, value, ttlMs }));
  } catch (err) {
    if (!isOom(err)) throw err;
    // fence_set.lua refuses at its HSET, before it has written: nothing changed.
    throw new TasukiError(
      'E_REDIS',
      `fencedSet of ${key}: Redis is at maxmemory and refuses writes (${(err as Error).message}); nothing was written. ` +
        `Free memory or raise maxmemory, then write again (the token is still valid while the lock is held).`,
      { cause: err },
    );
  }
  const [ok, stored] = reply;
  if (ok !== 1) throw new StaleTokenError(`Redis key ${key}`, token, BigInt(stored));
}

/** Reads a value written by {@link fencedSet}: the value and its writer's token, or `undefined`. */
export async function fencedGet(redis: RedisConnection, key: string): Promise<FencedValue | undefined> {
  const [value, fence] = await redis.hmget(key, 'v', 'fence');
  if (value == null || fence == null) return undefined;
  return { value, token: BigInt(fence) };
}
