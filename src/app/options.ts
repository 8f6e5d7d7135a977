/** An app's options: what a user may set, the defaults, and their validation (one schema). */
import type { RedisOptions } from 'ioredis';
import { z } from 'zod';
import { DAY_MS } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import type { PayloadStore } from '../payloads/store.js';
import type { TaskTracer } from '../task/tracer.js';
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
  /**
   * Where tasks travel (see docs/brokers.md): `"redis"` (Redis Streams on the app's Redis, the
   * default) or a RabbitMQ URL, `amqp://user:pass@host:5672/vhost` or `amqps://...`; default
   * `TASUKI_BROKER_URL` when set. Results, locks, keys, beat leadership and events stay on Redis
   * either way. RabbitMQ needs the optional peer dependency `rabbitmq-client`.
   */
  broker?: string;
  /** Settings of the RabbitMQ broker (ignored on Redis). */
  rabbitmq?: RabbitMqOptions;
  /** First part of every key (default `tsk`). */
  prefix?: string;
  /** Queues this app uses (default `["default"]`). Enqueueing to any other is an error. */
  queues?: readonly string[];
  /** How long results are kept (default `24h`). Results never live forever. */
  resultTtl?: Duration;
  /** How long an idempotency key is remembered (default `24h`). */
  idempotencyTtl?: Duration;
  /**
   * Replicas that must have an enqueue before it resolves (default 0: the primary's answer is
   * enough). With 1, a task survives its primary being killed right after the enqueue (Redis
   * replicates asynchronously; see docs/cluster.md). Each enqueue then adds a `WAIT`.
   */
  enqueueReplicas?: number;
  /** Longest an enqueue waits for {@link enqueueReplicas} (default `1s`); then `E_REPLICAS`. */
  enqueueReplicaTimeout?: Duration;
  /**
   * Also publish the task event map's events (enqueued, started, succeeded, retried, dead, expired,
   * released, limited) on the channel `tasuki.<queue>` of each queue, for any process to read and
   * resume (default false; see `app.taskEvents()` and docs/dashboard.md#events). Costs one script
   * call per queue per batch of events.
   */
  events?: boolean;
  /**
   * Trace enqueues and runs, with the trace context carried in each message (default: off, and an
   * untraced app pays nothing for it). Pass `openTelemetry()` from `tasuki/tracing`; see
   * docs/metrics.md#tracing.
   */
  tracing?: TaskTracer;
  /** Largest encoded arguments accepted by enqueue, in bytes, store or not (default 512 KiB). */
  maxPayloadBytes?: number;
  /** The claim check for big arguments (see docs/payloads.md). */
  payloads?: PayloadOptions;
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

/** Settings of the RabbitMQ broker; every field is optional. */
export interface RabbitMqOptions {
  /**
   * Type of the task queues tasuki declares (default `"quorum"`: durable and replicated, with a
   * delivery limit; `"classic"` for a broker without quorum queues). Existing queues are used as
   * they are declared.
   */
  queueType?: 'quorum' | 'classic';
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

/**
 * Where big arguments go instead of Redis, and when. With a store, encoded arguments over
 * `threshold` are put in it and the message carries only `{ref, sha256, size}`; without one they
 * stay inline up to `inlineLimit`, and enqueue refuses anything bigger.
 */
export interface PayloadOptions {
  /**
   * The payload store: a {@link PayloadStore} (`FileSystemPayloadStore`, `PostgresPayloadStore`), a
   * directory path, or a `postgres://` URL. Default `TASUKI_PAYLOAD_STORE` when set (`tasuki dev`
   * sets it to a temp directory), else none.
   */
  store?: PayloadStore | string;
  /** Encoded arguments over this many bytes go to the store (default 1024); a task may set its own. */
  threshold?: number;
  /**
   * How long a payload is kept from its task's due time (default `7d`). A payload whose task
   * finished is deleted at once; this bounds the rest (dead letters, lost producers). Keep it at
   * least as long as a task may wait, retry, and sit in the dead letters (`deadLetterRetention`).
   */
  ttl?: Duration;
  /** Without a store: the largest encoded arguments kept inline in Redis (default 64 KiB). */
  inlineLimit?: number;
}

const PAYLOAD_STORE_METHODS = ['put', 'putMany', 'get', 'delete', 'gc', 'migrate', 'close'] as const;

function isPayloadStore(v: unknown): v is PayloadStore {
  return (
    typeof v === 'object' &&
    v !== null &&
    PAYLOAD_STORE_METHODS.every((m) => typeof (v as Record<string, unknown>)[m] === 'function')
  );
}

const payloads = z
  .strictObject({
    store: z
      .union([
        z.string().min(1, 'must be a directory path or a postgres:// URL, not empty'),
        z.custom<PayloadStore>(
          isPayloadStore,
          `must be a payload store (with ${PAYLOAD_STORE_METHODS.join(', ')}), a directory path or a postgres:// URL`,
        ),
      ])
      .optional(),
    threshold: integer(0).default(1024),
    ttl: duration().default(7 * DAY_MS),
    inlineLimit: integer(1).default(64 * 1024),
  })
  .prefault({});

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
  broker: z
    .string()
    .superRefine((v, ctx) => {
      if (v === 'redis' || /^amqps?:\/\/./.test(v)) return;
      ctx.addIssue({
        code: 'custom',
        // Credentials in a URL are not repeated in the error.
        message:
          `${quote(v.replace(/\/\/[^@/]*@/, '//***@'))} is not a broker: use "redis" or a RabbitMQ URL ` +
          '(amqp://user:pass@host:5672/vhost or amqps://...)',
      });
    })
    .optional(),
  rabbitmq: z
    .strictObject({ queueType: z.enum(['quorum', 'classic']).default('quorum') })
    .default({ queueType: 'quorum' }),
  // The keyspace checks the prefix itself (src/keys/registry.ts).
  prefix: z.string().default('tsk'),
  queues: z.array(queueName).min(1, 'must be a non-empty array of queue names').default(['default']),
  resultTtl: duration().default(DAY_MS),
  idempotencyTtl: duration().default(DAY_MS),
  enqueueReplicas: integer(0).default(0),
  enqueueReplicaTimeout: duration().default(1000),
  events: z.boolean().default(false),
  tracing: z
    .custom<TaskTracer>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as TaskTracer).enqueue === 'function' &&
        typeof (v as TaskTracer).run === 'function',
      "must be a tracer, e.g. openTelemetry() from 'tasuki/tracing'",
    )
    .optional(),
  maxPayloadBytes: integer(1).default(512 * 1024),
  payloads,
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
