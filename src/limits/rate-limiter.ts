/**
 * The worker side of rate limits: one `rate_limit` script call reserves a task's start slot under
 * all its limits at once (GCRA; see rate_limit.lua and docs/rate-limits.md). Only tasks that have
 * limits come here; a task without any costs the worker nothing.
 */
import type { RedisConnection } from '../connection/redis.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import type { CompiledRateLimits } from './rate.js';

/** Key part of a limit of the whole task (a keyed limit puts its key's value there). */
export const WHOLE_TASK = '-';

export class RateLimiter {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: TasukiKeys,
  ) {}

  /**
   * The Redis keys of a task's limits for these arguments. Key values go through the registry,
   * which hashes long or unsafe ones, so no key name carries task data. Throws what a key function
   * throws.
   */
  limitKeys(task: string, limits: CompiledRateLimits, args: unknown): string[] {
    return limits.map((l, i) =>
      this.keys.rateLimit.key({ task, limit: String(i), key: l.key ? String(l.key(args)) : WHOLE_TASK }),
    );
  }

  /**
   * Reserves the task's next start slot under all its limits (keys from {@link limitKeys}, in the
   * same order); resolves the ms to wait for it (0: start now).
   */
  reserve(keys: readonly string[], limits: CompiledRateLimits): Promise<number> {
    return scripts.run(this.redis, scripts.rateLimit({ limits: keys }, { limits }));
  }
}
