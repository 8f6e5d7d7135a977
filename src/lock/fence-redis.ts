import type { Redis } from 'ioredis';
import { TasukiError } from '../errors.js';
import { fenceSet, registerScripts, run } from '../scripts/catalogue.js';
import { toMs, type Duration } from '../util/duration.js';
import { StaleTokenError } from './errors.js';

/** A value written through {@link fencedSet}, with the token of its last writer. */
export interface FencedValue {
  value: string;
  token: bigint;
}

function checkToken(token: bigint): string {
  if (typeof token !== 'bigint' || token < 0n) {
    throw new TasukiError(
      'E_OPTIONS',
      `fencing token must be a non-negative bigint (lock.token), got ${String(token)}`,
    );
  }
  return token.toString();
}

/**
 * Redis compare-and-set by fencing token: writes `value` to the hash `key` (fields `v` and `fence`)
 * only if `token` is strictly greater than the token stored with it, in one Lua script. A stale token
 * throws {@link StaleTokenError} and writes nothing. `key` should come from your keyspace registry
 * (`space.define({ type: 'hash', codec: 'hash: v = value, fence = token', ... })`).
 *
 * @param options.ttl - TTL the key gets on each write (default: leave it as it is).
 */
export async function fencedSet(
  redis: Redis,
  key: string,
  token: bigint,
  value: string,
  options: { ttl?: Duration } = {},
): Promise<void> {
  const t = checkToken(token);
  const ttlMs = options.ttl === undefined ? 0 : toMs(options.ttl);
  if (ttlMs === undefined || !Number.isInteger(ttlMs) || (options.ttl !== undefined && ttlMs <= 0)) {
    throw new TasukiError(
      'E_OPTIONS',
      `fencedSet ttl must be a positive duration, got ${JSON.stringify(options.ttl)}`,
    );
  }
  registerScripts(redis);
  const [ok, stored] = await run(redis, fenceSet({ value: key }, { token: t, value, ttlMs }));
  if (ok !== 1) throw new StaleTokenError(`Redis key ${key}`, token, BigInt(stored));
}

/** Reads a value written by {@link fencedSet}: the value and its writer's token, or `undefined`. */
export async function fencedGet(redis: Redis, key: string): Promise<FencedValue | undefined> {
  const [value, fence] = await redis.hmget(key, 'v', 'fence');
  if (value == null || fence == null) return undefined;
  return { value, token: BigInt(fence) };
}
