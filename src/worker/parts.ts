/**
 * The parts a running worker is made of, and how they open and close: its two connections behind
 * the broker, the fetch loop, the completer, the heartbeat (from a thread), the reclaimer, the
 * promoter and the consumer sweeper. worker.ts decides when; this file knows what and in which order.
 */
import type { RedisConnection } from '../connection/redis.js';
import type { Broker } from '../broker/broker.js';
import type { BrokerChoice } from '../broker/choice.js';
import { RabbitMqBroker } from '../broker/rabbitmq.js';
import { RedisStreamsBroker } from '../broker/redis-streams.js';
import type { ConnectionOptions } from '../connection/connect.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { checkEvictionPolicy } from '../limits/memory-guard.js';
import { RateLimiter } from '../limits/rate-limiter.js';
import { IsolationPools } from '../isolation/pool.js';
import type { Logger } from '../log/logger.js';
import type { PayloadStore } from '../payloads/store.js';
import { ProgressWriter } from '../progress/writer.js';
import type { BackgroundLoop } from '../util/loop.js';
import { within } from '../util/within.js';
import { ControlFollower, type ControlHost } from '../control/follower.js';
import { ConsumerSweeper, Reclaimer, type ClaimHost, type ClaimRenewer } from './claims.js';
import { Completer } from './completer.js';
import { Fetcher, type FetchHost } from './fetcher.js';
import { ThreadHeartbeat } from './heartbeat-thread.js';
import type { ResolvedWorkerOptions } from './options.js';
import { Presence, type PresenceHost } from './presence.js';
import { Promoter } from './promoter.js';
import type { Attempt, RunnerSettings, TaskRegistry } from './runner.js';
import type { TaskTracer } from '../task/tracer.js';
import type { TaskEvents } from '../events/event-map.js';

/** Follows a worker's events to publish them (the app option `events: true`; src/channels/lifecycle.ts). */
export interface AttemptEvents {
  followAttempts(source: TaskEvents): void;
}

/** What a worker needs from its app (a `Tasuki` app is one). */
export interface WorkerHost extends TaskRegistry {
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  readonly log: Logger;
  readonly resultTtlMs: number;
  readonly deadLetterMaxLen: number;
  readonly deadLetterRetentionMs: number;
  /** Where claim-checked arguments are; their payloads are deleted once their task is done. */
  readonly payloadStore?: PayloadStore | undefined;
  /** Results over this many bytes go to the payload store (default 1024, with a store). */
  readonly payloadThreshold?: number;
  /** Opens a new connection to the app's Redis, named `clientName` in CLIENT LIST. */
  connectRedis(clientName: string): Promise<RedisConnection>;
  /** Where Redis is, password masked, for logs. */
  describeRedis(): string;
  /** Where tasks travel (absent: Redis Streams on the app's Redis). */
  readonly broker?: BrokerChoice;
  /** Publishes the worker's events (app option `events: true`); `undefined`: none are published. */
  readonly lifecycle?: AttemptEvents | undefined;
  /** Traces runs (app option `tracing`); `undefined`: untraced. */
  readonly tracer?: TaskTracer | undefined;
  /**
   * How {@link connectRedis} connects (URL and settings), for the heartbeat thread's own connection.
   * Without it, or when its ioredis options cannot be passed to a thread, claims are renewed on the
   * event loop.
   */
  connectionOptions?(clientName: string): ConnectionOptions | undefined;
}

/**
 * Longest a stopping worker waits for Redis at each step (hand-back, loops, leaving the group): a
 * worker must stop within its grace even while Redis does not answer.
 */
export const REDIS_WAIT_MS = 5000;

/** The parts a started worker runs. */
export interface Running {
  broker: Broker;
  fetcher: Fetcher;
  completer: Completer;
  heartbeat: ClaimRenewer & { started(): Promise<void> };
  reclaimer: Reclaimer;
  /** Reserves start slots of rate-limited tasks (on the command connection). */
  limiter: RateLimiter;
  /** Promotes due delayed tasks; woken early for tasks held back until their rate-limit slot. */
  promoter: Promoter;
  /** Writes `ctx.progress` reports (on the command connection, before the attempt's settle call). */
  progress: ProgressWriter;
  /** Follows the queues' control streams (pauses, revokes, cancels) on a connection of its own. */
  control: ControlFollower;
  /** Background loops started after the heartbeat is running, stopped together at the end. */
  loops: Pick<BackgroundLoop, 'start' | 'stop'>[];
}

/** What the runner needs of a worker (the rate limiter and progress writer are set once connected). */
export function runnerSettings(
  app: WorkerHost,
  options: ResolvedWorkerOptions,
  worker: string,
  log: Logger,
): RunnerSettings {
  return {
    worker,
    maxDeliveries: options.maxDeliveries,
    unknownTasks: options.unknownTasks,
    releaseForMs: options.releaseForMs,
    log,
    payloads: app.payloadStore,
    resultThreshold: app.payloadStore ? (app.payloadThreshold ?? 1024) : Infinity,
    resultTtlMs: app.resultTtlMs,
    isolation: new IsolationPools(options.concurrency),
    tracer: app.tracer,
  };
}

/**
 * Connects and builds a worker's parts (nothing started yet), once every queue can be served (its
 * consumer group exists). `recorded` is called with attempts the broker took (`stale`: entries whose
 * outcome it did not record, another worker having taken them over).
 */
export async function openParts(
  app: WorkerHost,
  worker: ClaimHost & FetchHost & PresenceHost & ControlHost,
  options: ResolvedWorkerOptions,
  log: Logger,
  recorded: (attempts: readonly Attempt[], stale: ReadonlySet<string>) => void,
): Promise<Running> {
  const redis = await app.connectRedis('tasuki:worker');
  const onRabbit = app.broker?.kind === 'rabbitmq';
  const broker = onRabbit
    ? new RabbitMqBroker({
        url: app.broker?.url as string,
        redis,
        keys: app.keys,
        log,
        resultTtlMs: app.resultTtlMs,
        deadLetterMaxLen: app.deadLetterMaxLen,
        deadLetterRetentionMs: app.deadLetterRetentionMs,
        queueType: app.broker?.queueType ?? 'quorum',
        prefetch: options.concurrency + options.prefetch,
        outboxAgeMs: options.claimIdleMs,
        outboxIntervalMs: options.reclaimIntervalMs,
      })
    : await redisStreams(app, redis);
  const control = await app.connectRedis('tasuki:worker-control').catch(async (err: unknown) => {
    redis.disconnect();
    await broker.close();
    throw err;
  });
  try {
    await broker.prepare(options.queues);
  } catch (err) {
    control.disconnect();
    await broker.close();
    throw err;
  }
  // An evicting Redis loses tasks silently: say so when the worker starts (never fails the start).
  const policy = (await redis.info('memory').catch(() => '')).match(/^maxmemory_policy:(\S+)/m)?.[1];
  await checkEvictionPolicy(redis, log, policy);
  const reclaimer = new Reclaimer(broker, worker, log, options.claimIdleMs, options.reclaimIntervalMs);
  // After a lost connection every entry looks idle (heartbeats stopped everywhere): reclaims wait.
  redis.on('close', () => reclaimer.disconnected());
  redis.on('ready', () => reclaimer.outage());
  // Renews claims from a thread, so a handler that blocks the event loop keeps its task. (On
  // RabbitMQ a claim lives as long as the channel: the in-process check only reports losses.)
  const heartbeat = new ThreadHeartbeat(broker, worker, log, options.heartbeatMs, {
    connection: onRabbit ? undefined : app.connectionOptions?.('tasuki:worker-heartbeat'),
    prefix: app.keys.space.prefix,
  });
  const promoter = new Promoter(broker, options.queues, log, options.promoteIntervalMs);
  return {
    broker,
    promoter,
    fetcher: new Fetcher(broker, worker, log, options.concurrency + options.prefetch, options.blockMs),
    completer: new Completer(broker, worker.name, log, recorded),
    heartbeat,
    reclaimer,
    control: new ControlFollower(control, app.keys, options.queues, worker, log, options.blockMs),
    limiter: new RateLimiter(redis, app.keys),
    progress: new ProgressWriter(redis, app.keys, app.resultTtlMs, log),
    loops: [
      heartbeat,
      reclaimer,
      promoter,
      new Presence(redis, app.keys, worker, log),
      // A consumer holding nothing and silent past claimIdle is a dead worker's (a live one that
      // is merely idle is re-created by its next read; the check and removal are one script).
      new ConsumerSweeper(
        broker,
        options.queues,
        log,
        options.claimIdleMs,
        Math.max(100, options.claimIdleMs),
      ),
    ],
  };
}

/** The Redis Streams broker on the worker's command connection and a blocking one of its own. */
async function redisStreams(app: WorkerHost, redis: RedisConnection): Promise<RedisStreamsBroker> {
  const blocking = await app.connectRedis('tasuki:worker-fetch').catch((err: unknown) => {
    redis.disconnect();
    throw err;
  });
  return new RedisStreamsBroker({
    redis,
    blocking,
    keys: app.keys,
    resultTtlMs: app.resultTtlMs,
    deadLetterMaxLen: app.deadLetterMaxLen,
    deadLetterRetentionMs: app.deadLetterRetentionMs,
  });
}

/**
 * The end of a stop, once nothing runs: records what finished, stops the loops, leaves the consumer
 * groups (a worker that holds nothing removes its consumer, so groups do not keep one per worker
 * ever run) and closes the connections — each step bounded, so a stop ends while Redis is away.
 */
export async function closeParts(
  parts: Running,
  queues: readonly string[],
  consumer: string,
  log: Logger,
): Promise<void> {
  const drained = await parts.completer.drain();
  if (!drained)
    log.error(
      { backlog: parts.completer.backlog },
      'could not record every finished task before stopping; they run again after claimIdle',
    );
  await within(Promise.all(parts.loops.map((loop) => loop.stop())), REDIS_WAIT_MS, 'loops').catch(
    () => undefined,
  );
  const leave = async (): Promise<void> => {
    for (const queue of queues) {
      await parts.broker.forgetIdleConsumers(queue, 0, consumer).catch(() => undefined);
    }
  };
  await within(leave(), REDIS_WAIT_MS, 'leaving').catch(() => undefined);
  await parts.control.stop();
  await parts.broker.close();
}
