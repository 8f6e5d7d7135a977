/** A worker's options: what a user may set, the defaults, and their validation (one schema). */
import { z } from 'zod';
import { UnknownQueueError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Duration } from '../util/duration.js';
import { duration, integer, parseOptions } from '../util/options.js';

/** Options of a worker. Every field is optional; defaults are listed. */
export interface WorkerOptions {
  /** Queues to serve (default: every queue of the app). */
  queues?: readonly string[];
  /** Tasks run at once (default 10). */
  concurrency?: number;
  /** Tasks fetched ahead of free slots, so the next task is at hand (default max(concurrency, 16)). */
  prefetch?: number;
  /** Longest a fetch blocks waiting for work, ms (default 2000). */
  blockMs?: number;
  /** Longest sleep between promotions of delayed tasks, ms (default 500). */
  promoteIntervalMs?: number;
  /**
   * A task held by a worker that sent no heartbeat for this long is taken over by another worker
   * (default `30s`). Live workers renew their claims every third of it, however long a task runs,
   * from a thread of their own, so a handler that blocks the event loop does not stop them.
   */
  claimIdle?: Duration;
  /** How often to look for tasks of dead workers (default: half of claimIdle, at most 5 s). */
  reclaimInterval?: Duration;
  /** Deliveries after which a task that keeps killing its workers is dead-lettered (default 5). */
  maxDeliveries?: number;
  /**
   * What to do with a task whose name this worker does not know (default `release`): `release`
   * leaves it for another worker (a newer one, during a rolling deploy) until it has waited
   * `releaseFor`, then dead-letters it; `dead-letter` dead-letters it at once (right when a typo is
   * the only cause). Messages in a newer format than this worker reads are always released.
   */
  unknownTasks?: 'release' | 'dead-letter';
  /** How long a task no worker could run may wait before it is dead-lettered (default `15m`). */
  releaseFor?: Duration;
  /** On stop, how long running tasks may take to finish (default `25s`; ECS waits 30 s). */
  grace?: Duration;
  /** Consumer name (default `<host>:<pid>:<random>`). */
  name?: string;
  /** Logger (default: the app's). */
  logger?: Logger;
}

/** Worker options after validation, with defaults applied and durations in ms. */
export interface ResolvedWorkerOptions {
  queues: readonly string[];
  concurrency: number;
  prefetch: number;
  blockMs: number;
  promoteIntervalMs: number;
  claimIdleMs: number;
  reclaimIntervalMs: number;
  heartbeatMs: number;
  maxDeliveries: number;
  unknownTasks: 'release' | 'dead-letter';
  releaseForMs: number;
  graceMs: number;
  name: string | undefined;
  logger: Logger | undefined;
}

const schema = z.strictObject({
  queues: z.array(z.string()).min(1).optional(),
  concurrency: integer(1).default(10),
  prefetch: integer(0).optional(),
  blockMs: integer(1).default(2000),
  promoteIntervalMs: integer(1).default(500),
  claimIdle: duration().default(30_000),
  reclaimInterval: duration().optional(),
  maxDeliveries: integer(1).default(5),
  unknownTasks: z.enum(['release', 'dead-letter']).default('release'),
  releaseFor: duration({ min: 0 }).default(15 * 60_000),
  grace: duration({ min: 0 }).default(25_000),
  name: z.string().min(1).max(200).optional(),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'must be a pino logger').optional(),
});

/** Validates a worker's options against the schema and the app's queues. */
export function resolveWorkerOptions(
  options: WorkerOptions | undefined,
  appQueues: readonly string[],
): ResolvedWorkerOptions {
  const o = parseOptions(schema, options, 'worker options');
  const queues = [...new Set(o.queues ?? appQueues)];
  for (const q of queues) {
    if (!appQueues.includes(q)) throw new UnknownQueueError(q, appQueues, 'no worker was started');
  }
  return {
    queues,
    concurrency: o.concurrency,
    prefetch: o.prefetch ?? Math.max(o.concurrency, 16),
    blockMs: o.blockMs,
    promoteIntervalMs: o.promoteIntervalMs,
    claimIdleMs: o.claimIdle,
    reclaimIntervalMs: o.reclaimInterval ?? Math.min(5000, o.claimIdle / 2),
    heartbeatMs: Math.max(10, Math.floor(o.claimIdle / 3)),
    maxDeliveries: o.maxDeliveries,
    unknownTasks: o.unknownTasks,
    releaseForMs: o.releaseFor,
    graceMs: o.grace,
    name: o.name,
    logger: o.logger,
  };
}
