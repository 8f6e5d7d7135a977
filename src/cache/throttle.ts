/**
 * Throttling counters, as DRF's `SimpleRateThrottle` did on the source's shared Redis, but bounded:
 * one small integer per client and window (DRF keeps a list of request times per client), with the
 * window as its TTL, and client ids hashed into the key name (`keyPart`), so no request data can
 * grow a key or its name.
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError, TasukiError } from '../errors.js';
import type { KeyDef } from '../keys/registry.js';
import { parseRate, type Rate } from '../limits/rate.js';
import { quote } from '../util/options.js';

/** Longest window a throttle may have: its keys' TTL is at most this (1 day). */
export const MAX_THROTTLE_WINDOW_MS = 24 * 60 * 60 * 1000;

/** What {@link Throttle.hit} decided. */
export interface ThrottleDecision {
  /** True when the request is within the rate. */
  allowed: boolean;
  /** Requests left in the current window. */
  remaining: number;
  /** Ms until the window ends (when a refused client may try again). */
  retryAfterMs: number;
}

/**
 * A fixed-window rate per client: at most `count` hits per window. The window starts with a
 * client's first hit; at a window's edge a client can get up to twice the rate in a short time (the
 * price of one integer per client instead of a log of times).
 */
export class Throttle {
  readonly count: number;
  readonly windowMs: number;

  /** @internal Made by `Cache.throttle`. */
  constructor(
    private readonly redis: () => Promise<RedisConnection>,
    private readonly def: KeyDef<string>,
    readonly scope: string,
    rate: Rate,
  ) {
    const parsed = parseRate(rate);
    if (!parsed || parsed.periodMs > MAX_THROTTLE_WINDOW_MS) {
      throw new TasukiError(
        'E_OPTIONS',
        `throttle ${quote(scope)}: rate ${quote(rate)} is not a rate such as "100/m", "10/s" or "1000/d" (windows up to 1 day)`,
      );
    }
    this.count = parsed.count;
    this.windowMs = parsed.periodMs;
  }

  /** The key counting `client`'s hits (for tests and inspection). */
  key(client: string): string {
    return this.def.key({ scope: this.scope, client });
  }

  /** Counts one hit of `client` and says whether it is within the rate. One MULTI round trip. */
  async hit(client: string): Promise<ThrottleDecision> {
    const key = this.key(client);
    const redis = await this.redis();
    let res: [Error | null, unknown][] | null;
    try {
      res = await redis.multi().set(key, 0, 'PX', this.windowMs, 'NX').incr(key).pttl(key).exec();
    } catch (err) {
      throw redisError(`throttle "${this.scope}": counting a hit`, err);
    }
    const failed = res?.find((r) => r[0]);
    if (!res || failed)
      throw redisError(`throttle "${this.scope}": counting a hit`, failed?.[0] ?? 'no reply');
    const n = Number(res[1]?.[1]);
    const pttl = Number(res[2]?.[1]);
    return {
      allowed: n <= this.count,
      remaining: Math.max(0, this.count - n),
      retryAfterMs: pttl > 0 ? pttl : this.windowMs,
    };
  }

  /** Forgets `client`'s hits (e.g. after a successful login). */
  async reset(client: string): Promise<void> {
    await (await this.redis()).del(this.key(client));
  }
}
