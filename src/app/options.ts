/** An app's options: what a user may set, the defaults, and their validation (one schema). */
import type { RedisOptions } from 'ioredis';
import { z } from 'zod';
import { DAY_MS } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import type { Duration } from '../util/duration.js';
import { duration, integer, parseOptions, quote } from '../util/options.js';
import { QUEUE_NAME } from '../wire/ids.js';

/** Options of a tasuki app. Every field is optional; defaults are listed. */
export interface AppOptions {
  /** Redis URL; default `TASUKI_REDIS_URL`, else `REDIS_URL`. */
  redis?: string;
  /** Extra ioredis options (TLS certificates...). */
  redisOptions?: RedisOptions;
  /** Connection attempts at start before giving up (default 5). */
  connectAttempts?: number;
  /** First part of every key (default `tsk`). */
  prefix?: string;
  /** Queues this app uses (default `["default"]`). Enqueueing to any other is an error. */
  queues?: readonly string[];
  /** How long results are kept (default `24h`). Results never live forever. */
  resultTtl?: Duration;
  /** How long an idempotency key is remembered (default `24h`). */
  idempotencyTtl?: Duration;
  /** Largest encoded arguments accepted by enqueue, in bytes (default 512 KiB). */
  maxPayloadBytes?: number;
  /** Approximate most dead letters kept per queue (default 10000). */
  deadLetterMaxLen?: number;
  /** Dead letters older than this are trimmed (default `7d`). */
  deadLetterRetention?: Duration;
  /** Logger (default: JSON lines on stdout, pretty on a TTY). */
  logger?: Logger;
  /**
   * The memory guard (see docs/memory.md): enqueues wait, then fail with `E_MEMORY_FULL`, while
   * Redis's `used_memory` is above `highWatermark` of its `maxmemory`. On by default (it does
   * nothing when Redis has no maxmemory); `false` turns it off.
   */
  memoryGuard?: MemoryGuardOptions | false;
}

/** Options of the memory guard; every field is optional. */
export interface MemoryGuardOptions {
  /** Fraction of maxmemory above which enqueues are held back (default 0.9; 0 < w <= 1). */
  highWatermark?: number;
  /** Longest an enqueue waits for headroom before it fails with `E_MEMORY_FULL` (default `2s`; 0: fail at once). */
  maxWait?: Duration;
  /** How often INFO memory is sampled in the background (default `1s`). */
  sampleInterval?: Duration;
}

const queueName = z.string().superRefine((name, ctx) => {
  if (!QUEUE_NAME.test(name)) {
    ctx.addIssue({
      code: 'custom',
      message: `${quote(name)} is not a valid queue name (1-64 of A-Z a-z 0-9 _ . -)`,
    });
  }
});

const schema = z.strictObject({
  redis: z.string().optional(),
  redisOptions: z
    .custom<RedisOptions>((v) => typeof v === 'object' && v !== null, 'must be an object')
    .optional(),
  connectAttempts: integer(1).optional(),
  // The keyspace checks the prefix itself (src/keys/registry.ts).
  prefix: z.string().default('tsk'),
  queues: z.array(queueName).min(1, 'must be a non-empty array of queue names').default(['default']),
  resultTtl: duration().default(DAY_MS),
  idempotencyTtl: duration().default(DAY_MS),
  maxPayloadBytes: integer(1).default(512 * 1024),
  deadLetterMaxLen: integer(1).default(10_000),
  deadLetterRetention: duration().default(7 * DAY_MS),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'must be a pino logger').optional(),
  memoryGuard: z
    .union([
      z.literal(false),
      z.strictObject({
        highWatermark: z
          .number()
          .gt(0, 'must be a fraction of maxmemory above 0, e.g. 0.9')
          .lte(1, 'must be a fraction of maxmemory up to 1, e.g. 0.9')
          .default(0.9),
        maxWait: duration({ min: 0 }).default(2000),
        sampleInterval: duration({ min: 10 }).default(1000),
      }),
    ])
    .default({ highWatermark: 0.9, maxWait: 2000, sampleInterval: 1000 }),
});

/** App options after validation: defaults applied, durations in ms. */
export type ResolvedAppOptions = z.output<typeof schema>;

export function resolveAppOptions(options: AppOptions | undefined): ResolvedAppOptions {
  return parseOptions(schema, options, 'app options');
}
