/**
 * The app: `tasuki()` reads the options and wires the parts together — tasks, the result waiter,
 * dead letters, locks — handing each the narrow host interface it declares. It holds no logic of
 * its own beyond that, so new parts plug in here without growing it.
 */
import type { ChainableCommander } from 'ioredis';
import {
  chooseBroker,
  describeBroker,
  openPublisher,
  type BrokerChoice,
  type OpenPublisher,
} from '../broker/choice.js';
import type { Publisher, WaitingTasks } from '../broker/broker.js';
import type { RedisConnection } from '../connection/redis.js';
import { connect, type ConnectionOptions } from '../connection/connect.js';
import { execTransaction } from '../connection/transaction.js';
import { maskUrl, redisUrlFromEnv } from '../connection/url.js';
import { ClosedError, OptionsError, TasukiError, UnknownQueueError, type MemoryReading } from '../errors.js';
import { tasukiKeys, type TasukiKeys } from '../keys/tasuki-keys.js';
import type { Keyspace } from '../keys/registry.js';
import { createLogger, type Logger } from '../log/logger.js';
import { lookupTask, type TaskInfo } from '../results/lookup.js';
import { followProgress, readProgress, type FollowProgressOptions } from '../progress/reader.js';
import type { Progress } from '../progress/value.js';
import { loadResult } from '../results/stored-result.js';
import { ResultWaiter } from '../results/waiter.js';
import { DeadLetters } from '../deadletters/dead-letters.js';
import { Locks } from '../lock/locks.js';
import { Channel, type ChannelOptions } from '../channels/channel.js';
import { LifecyclePublisher, taskEventsChannel, type taskEventSchema } from '../channels/lifecycle.js';
import { TaskSubscription } from '../events/subscription.js';
import { TypedEmitter } from '../events/emitter.js';
import type { EnqueueEventMap } from '../events/event-map.js';
import { Inspector } from '../inspect/inspector.js';
import { openPayloadStore } from '../payloads/open.js';
import type { PayloadStore } from '../payloads/store.js';
import type { LockOptions } from '../lock/options.js';
import { registerScripts } from '../scripts/catalogue.js';
import { MemoryGuard } from '../limits/memory-guard.js';
import { toMs, type Duration } from '../util/duration.js';
import { parseTaskId } from '../wire/ids.js';
import { queueStats, type QueueStats } from '../results/stats.js';
import {
  controlOptions,
  controlTask,
  defaultAsker,
  purgeBrokerQueue,
  purgeQueue,
  readPaused,
  setPaused,
  type ControlOptions,
  type ControlResult,
  type PauseInfo,
  type PurgeResult,
} from '../control/control.js';
import { parseOptions } from '../util/options.js';
import { checkDefinition, type TaskDefinition } from '../task/definition.js';
import type { StandardSchemaV1 } from '../task/schema.js';
import { Task } from '../task/task.js';
import type { TaskTracer } from '../task/tracer.js';
import { checkSchedule, type ScheduleDefinition, type ScheduleSpec } from '../beat/definition.js';
import { Schedules } from '../beat/schedules.js';
import { resolveAppOptions, type AppOptions, type ResolvedAppOptions } from './options.js';
import { continuationTask } from '../canvas/index.js';
import { CANVAS_TASK } from '../wire/fields.js';

export type { AppOptions, MemoryGuardOptions } from './options.js';

const APP_BRAND: unique symbol = Symbol.for('tasuki.app') as never;

/**
 * A tasuki app: the tasks, the queues and the Redis they live in. Producers enqueue through it,
 * workers run its tasks, and any process with the same app can look tasks up.
 */
export class Tasuki {
  /** Brand checked by {@link isTasukiApp}, so apps are recognised across copies of the package. */
  readonly [APP_BRAND] = true;
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  readonly resultTtlMs: number;
  readonly idempotencyTtlMs: number;
  /** Publishes task events on the queues' channels when the app option `events` is true; else `undefined`. */
  readonly lifecycle: LifecyclePublisher | undefined;
  /**
   * `enqueued` events of the tasks this app writes (`app.enqueueEvents.on('enqueued', ...)`): built only
   * while someone listens. Workers emit the rest of the task event map (`worker.on`).
   */
  readonly enqueueEvents = new TypedEmitter<EnqueueEventMap>();
  /** Traces enqueues and runs (app option `tracing`); `undefined`: untraced. */
  readonly tracer: TaskTracer | undefined;
  /** Replicas an enqueue waits for (app option `enqueueReplicas`); `undefined` when none. */
  readonly enqueueReplicas: { count: number; timeoutMs: number } | undefined;
  /** Where the app's tasks travel (app option `broker`, see docs/brokers.md). */
  readonly broker: BrokerChoice;
  /** False on RabbitMQ: every task gets its id from the producer. */
  readonly brokerMintsIds: boolean;
  readonly maxPayloadBytes: number;
  /** Where claim-checked arguments are kept (`payloads.store`); `undefined` when none is configured. */
  readonly payloadStore: PayloadStore | undefined;
  readonly payloadThreshold: number;
  readonly payloadInlineLimit: number;
  readonly payloadTtlMs: number;
  readonly deadLetterMaxLen: number;
  readonly deadLetterRetentionMs: number;
  readonly log: Logger;
  private readonly options: ResolvedAppOptions;
  private readonly tasks = new Map<string, Task>();
  /** The internal task that carries canvases on (docs/canvas.md); made on first use. */
  private canvasTask: Task | undefined;
  private readonly declared = new Map<string, ScheduleSpec>();
  private schedulesApi: Schedules | undefined;
  private connection: Promise<RedisConnection> | undefined;
  private publishing: Promise<OpenPublisher> | undefined;
  private readonly waiter: ResultWaiter;
  private dlq: DeadLetters | undefined;
  private inspector: Inspector | undefined;
  /** The store was made here from a path or URL, so closing the app closes it. */
  private readonly ownsPayloadStore: boolean;
  private readonly subscriptions = new Set<TaskSubscription>();
  /** Admission before Redis is full (see docs/memory.md); started with the first connection. */
  readonly memoryGuard: MemoryGuard;

  constructor(options: AppOptions = {}) {
    const o = resolveAppOptions(options);
    this.options = o;
    this.queues = [...new Set(o.queues)];
    this.keys = tasukiKeys(o.prefix);
    this.resultTtlMs = o.resultTtl;
    this.idempotencyTtlMs = o.idempotencyTtl;
    this.tracer = o.tracing;
    this.enqueueReplicas =
      o.enqueueReplicas > 0 ? { count: o.enqueueReplicas, timeoutMs: o.enqueueReplicaTimeout } : undefined;
    this.broker = chooseBroker(o.broker, o.rabbitmq.queueType);
    this.brokerMintsIds = this.broker.kind === 'redis';
    this.maxPayloadBytes = o.maxPayloadBytes;
    const store = o.payloads.store ?? (process.env.TASUKI_PAYLOAD_STORE || undefined);
    this.payloadStore = typeof store === 'string' ? openPayloadStore(store) : store;
    this.ownsPayloadStore = typeof store === 'string';
    this.payloadThreshold = o.payloads.threshold;
    this.payloadInlineLimit = o.payloads.inlineLimit;
    this.payloadTtlMs = o.payloads.ttl;
    this.deadLetterMaxLen = o.deadLetterMaxLen;
    this.deadLetterRetentionMs = o.deadLetterRetention;
    this.log = o.logger ?? createLogger();
    this.lifecycle = o.events ? new LifecyclePublisher(this, this.log) : undefined;
    this.lifecycle?.followEnqueues(this.enqueueEvents);
    this.waiter = new ResultWaiter(
      () => this.redis(),
      this.keys,
      () => this.payloadStore,
      this.broker.kind !== 'redis',
    );
    const g = o.memoryGuard;
    this.memoryGuard = new MemoryGuard(
      g === false
        ? false
        : { highWatermark: g.highWatermark, maxWaitMs: g.maxWait, sampleIntervalMs: g.sampleInterval },
      this.log,
    );
  }

  /**
   * Admission of an enqueue by the memory guard: `undefined` to go on at once (a cached flag, no
   * Redis call), else a promise that waits for headroom or rejects with `E_MEMORY_FULL`. `bytes`:
   * what the enqueue adds to Redis, counted until the guard's next sample.
   */
  admit(task: string, bulk: boolean, bytes: number): Promise<void> | undefined {
    return this.memoryGuard.admit(task, bulk, bytes);
  }

  /** What the memory guard last read of Redis's memory (`undefined` before the first sample). */
  memoryReading(): MemoryReading | undefined {
    return this.memoryGuard.lastReading;
  }

  /** Read-only views for tools: pages of tasks, lag, workers, locks, memory (see src/inspect). */
  get inspect(): Inspector {
    return (this.inspector ??= new Inspector(this));
  }

  /** Throws `E_UNKNOWN_QUEUE` unless the app declares `queue`. */
  checkQueue(queue: string): void {
    if (!this.queues.includes(queue)) throw new UnknownQueueError(queue, this.queues, 'nothing was read');
  }

  /** The dead letters of this app's queues: list, show, retry, purge. */
  get deadLetters(): DeadLetters {
    return (this.dlq ??= new DeadLetters(this));
  }

  /**
   * Fenced locks on this app's Redis and keyspace (see docs/locks.md).
   *
   * @example
   * ```ts
   * const locks = await app.locks({ ttl: '30s' });
   * await locks.withLock('nightly-report', (lock) => build(lock.token));
   * ```
   */
  async locks(defaults: LockOptions = {}): Promise<Locks> {
    return new Locks(await this.redis(), this.keys, defaults);
  }

  /**
   * A typed channel on this app's Redis: publish/subscribe on a Redis stream (never PUBLISH, which a
   * cluster copies to every shard), fan-out with a cursor per subscriber, or work sharing through a
   * consumer group. Messages are checked against `schema`.
   *
   * @example
   * ```ts
   * const prices = app.channel({ name: 'prices', schema: z.object({ sku: z.string(), cents: z.number() }) });
   * const sub = prices.subscribe(({ data }) => console.log(data.sku, data.cents));
   * await prices.publish({ sku: 'a-1', cents: 120 });
   * ```
   */
  channel<S extends StandardSchemaV1>(options: ChannelOptions<S>): Channel<S> {
    return new Channel(this, options);
  }

  /** The channel of a queue's task lifecycle events (published when the app option `events` is true). */
  taskEvents(queue: string): Channel<typeof taskEventSchema> {
    if (!this.queues.includes(queue)) throw new UnknownQueueError(queue, this.queues, 'it has no events');
    return taskEventsChannel(this, queue);
  }

  /** The keyspace registry: declare the app's own keys here so the catalogue and audit know them. */
  get keyspace(): Keyspace {
    return this.keys.space;
  }

  /** Defines a task. Its name must be unique in the app and its queue one the app declares. */
  task<S extends StandardSchemaV1, R>(definition: TaskDefinition<S, R>): Task<S, R> {
    checkDefinition(definition);
    if (this.tasks.has(definition.name) || definition.name === CANVAS_TASK) {
      throw new TasukiError(
        'E_DUPLICATE_TASK',
        `task "${definition.name}" is already defined in this app; task names must be unique`,
      );
    }
    const queue = definition.queue ?? 'default';
    if (!this.queues.includes(queue)) {
      throw new UnknownQueueError(queue, this.queues, `task "${definition.name}" was not defined`);
    }
    const task = new Task<S, R>(this, definition);
    this.tasks.set(task.name, task as unknown as Task);
    return task;
  }

  /**
   * Declares a periodic schedule of one of the app's tasks (`tasuki beat` enqueues its ticks; see
   * docs/beat.md). Checked now: an invalid cron, an unknown task or queue, arguments the task's
   * schema refuses all throw here. Beats store it in Redis when they start, without clobbering
   * run-time changes to it.
   *
   * @example
   * ```ts
   * app.schedule({ name: 'nightly-report', task: report, args: { day: 'yesterday' }, cron: '0 3 * * *', timezone: 'Asia/Tokyo' });
   * ```
   */
  schedule<S extends StandardSchemaV1, R>(definition: ScheduleDefinition<S, R>): void {
    const spec = checkSchedule(this, definition as unknown as ScheduleDefinition);
    if (spec instanceof Promise) {
      spec.catch(() => undefined);
      throw new OptionsError(`schedule "${definition.name}"`, [
        {
          path: 'task',
          message:
            'its task has an asynchronous schema, which app.schedule() cannot check at definition time; add the schedule with `await app.schedules.add(...)`',
        },
      ]);
    }
    if (this.declared.has(spec.name)) {
      throw new TasukiError(
        'E_OPTIONS',
        `schedule "${spec.name}" is already declared in this app; schedule names must be unique`,
      );
    }
    this.declared.set(spec.name, spec);
  }

  /** The schedules declared with {@link schedule}, checked. */
  declaredSchedules(): ScheduleSpec[] {
    return [...this.declared.values()];
  }

  /** The schedules stored in Redis, changeable at run time: list, add, remove, pause, resume, run. */
  get schedules(): Schedules {
    return (this.schedulesApi ??= new Schedules(this));
  }

  /** The task with this name, if defined. */
  getTaskDefinition(name: string): Task | undefined {
    return this.tasks.get(name) ?? (name === CANVAS_TASK ? this.continuation() : undefined);
  }

  /** The internal `tasuki.canvas` task every app's workers run (it is not listed in taskNames()). */
  private continuation(): Task {
    return (this.canvasTask ??= new Task(this, continuationTask(this)) as unknown as Task);
  }

  /** Names of every defined task. */
  taskNames(): string[] {
    return [...this.tasks.keys()];
  }

  /** The app's Redis connection (connected on first use). After {@link close}: `E_CLOSED`. */
  redis(): Promise<RedisConnection> {
    // One rule after close, for every path (enqueue, result, getTask...): a clear error, no reconnect.
    if (this.waiter.isClosed) {
      return Promise.reject(new ClosedError('it makes no more Redis calls (enqueue, result, getTask...)'));
    }
    if (!this.connection) {
      const url = this.options.redis ?? redisUrlFromEnv();
      if (!url) {
        return Promise.reject(
          new TasukiError(
            'E_CONFIG',
            'no Redis URL: pass { redis: "redis://host:6379" } or set TASUKI_REDIS_URL or REDIS_URL ' +
              '(`tasuki dev` starts a local redis-server for you).',
          ),
        );
      }
      this.connection = connect({
        url,
        ...(this.options.connectAttempts !== undefined
          ? { startAttempts: this.options.connectAttempts }
          : {}),
        // A producer must not hang while Redis is down: a command fails after 3 reconnect attempts
        // (about a second) and is dropped from the offline queue, so a failed enqueue wrote nothing.
        redisOptions: { enableAutoPipelining: true, maxRetriesPerRequest: 3, ...this.options.redisOptions },
      }).then(async (r) => {
        registerScripts(r);
        // One INFO at the first connection: the guard knows Redis's headroom before the first enqueue.
        await this.memoryGuard.start(r);
        return r;
      });
      const connecting = this.connection;
      // A failed connect is tried again at the next call (unless another took its place meanwhile).
      connecting.catch(() => {
        if (this.connection === connecting) this.connection = undefined;
      });
    }
    return this.connection;
  }

  /**
   * The app's publisher (the producer side of its broker), opened on first use over the app's Redis
   * connection (Redis Streams) or a RabbitMQ connection of its own. After {@link close}: `E_CLOSED`.
   */
  publisher(): Promise<Publisher> {
    if (!this.publishing) {
      const opening = this.redis().then((redis) =>
        openPublisher(this.broker, {
          redis,
          keys: this.keys,
          queues: this.queues,
          idempotencyTtlMs: this.idempotencyTtlMs,
          replicas: this.enqueueReplicas,
        }),
      );
      opening.catch(() => {
        if (this.publishing === opening) this.publishing = undefined;
      });
      this.publishing = opening;
    }
    return this.publishing;
  }

  /** Where the app's tasks travel, password masked, for logs. */
  describeBroker(): string {
    return describeBroker(this.broker);
  }

  /** The URL the app connects to (for workers that open their own connections). */
  redisUrl(): string | undefined {
    return this.options.redis ?? redisUrlFromEnv();
  }

  /**
   * Opens a new connection to the app's Redis, with the app's settings (a worker keeps two of its
   * own: one for commands, one for blocking reads).
   */
  async connectRedis(clientName: string): Promise<RedisConnection> {
    const options = this.connectionOptions(clientName);
    if (!options) await this.redis(); // rejects with the app's "no Redis URL" error
    return connect(options as ConnectionOptions);
  }

  /**
   * How {@link connectRedis} connects: the app's URL and connection settings (a worker's heartbeat
   * thread opens its own connection with them). `undefined` without a Redis URL.
   */
  connectionOptions(clientName: string): ConnectionOptions | undefined {
    const url = this.redisUrl();
    if (!url) return undefined;
    return {
      url,
      clientName,
      ...(this.options.redisOptions ? { redisOptions: this.options.redisOptions } : {}),
      ...(this.options.connectAttempts !== undefined ? { startAttempts: this.options.connectAttempts } : {}),
    };
  }

  /** Where the app's Redis is, password masked, for logs. */
  describeRedis(): string {
    const url = this.redisUrl();
    return url ? maskUrl(url) : '(no Redis URL)';
  }

  /**
   * Runs a pipeline or MULTI and returns its replies; a Redis refusal (OOM, ...) becomes an
   * `E_REDIS` error that says what was being done and that it was not written.
   */
  exec(tx: ChainableCommander, what: string): Promise<unknown[]> {
    return execTransaction(tx, what);
  }

  /**
   * Looks a task up by id (state, result or error). `null` when unknown or its record expired.
   * Redis failures are typed: `E_REDIS` (unreachable, or what Redis said), `E_CONNECTION`, `E_AUTH`.
   */
  async getTask(id: string): Promise<TaskInfo | null> {
    parseTaskId(id); // a malformed id is E_TASK_ID, whatever the state of the connection
    const info = await lookupTask(await this.redis(), this.keys, id);
    if (info?.resultClaim === undefined) return info;
    // A result too big for Redis: loaded from the payload store, so callers see it as any other.
    const { resultClaim, ...rest } = info;
    return { ...rest, result: await loadResult(this.payloadStore, id, resultClaim) };
  }

  /**
   * The latest progress a task's handler reported (`ctx.progress`), with its attempt and time;
   * `null` when it reported none, or its reports expired with its record (result TTL).
   */
  async getProgress(id: string): Promise<Progress | null> {
    parseTaskId(id);
    return readProgress(await this.redis(), this.keys, id);
  }

  /**
   * A task's progress reports as they come: those kept so far (the last 100), then each new one,
   * through a blocking read on a connection of its own (no polling). Ends once the task has finished
   * (a retry goes on with the next attempt's reports), when it is unknown, or when `signal` aborts.
   *
   * @example
   * ```ts
   * for await (const p of app.followProgress(handle.id)) console.log(p.attempt, p.value);
   * ```
   */
  followProgress(id: string, opts: FollowProgressOptions = {}): AsyncIterable<Progress> {
    parseTaskId(id);
    return followProgress(this, id, opts);
  }

  /** The payload store, or an `E_CONFIG` error saying how to configure one. */
  private requirePayloadStore(what: string): PayloadStore {
    if (this.payloadStore) return this.payloadStore;
    throw new TasukiError(
      'E_CONFIG',
      `${what}: this app has no payload store. Set the app's payloads.store (a directory path, a postgres:// URL ` +
        'or a store object) or TASUKI_PAYLOAD_STORE; see docs/payloads.md.',
    );
  }

  /**
   * Deletes the payloads that expired (payload TTL past) from the app's payload store; resolves how
   * many. Run it periodically (`tasuki payloads gc`, a cron job): payloads of finished tasks are
   * deleted at once, this removes the rest (dead letters trimmed by retention, lost producers).
   */
  async gcPayloads(): Promise<number> {
    return this.requirePayloadStore('payload gc').gc();
  }

  /**
   * Creates what the app's payload store needs (its PostgreSQL table, its directory); idempotent.
   * Stores also do it on first use; run it at deploy time (`tasuki payloads migrate`) where the
   * app's database user may not create tables.
   */
  async migratePayloads(): Promise<void> {
    return this.requirePayloadStore('payload migrate').migrate();
  }

  /** Who asks, from control options (checked). */
  private asker(opts: ControlOptions | undefined, what: string): string {
    return parseOptions(controlOptions, opts ?? {}, `${what} options`).by ?? defaultAsker();
  }

  /** Revokes or cancels a task of one of the app's queues. */
  private async controlOne(
    id: string,
    op: 'revoke' | 'cancel',
    opts: ControlOptions | undefined,
  ): Promise<ControlResult> {
    const { queue } = parseTaskId(id);
    if (!this.queues.includes(queue)) {
      throw new UnknownQueueError(
        queue,
        this.queues,
        `nothing was ${op === 'revoke' ? 'revoked' : 'cancelled'}`,
      );
    }
    const by = this.asker(opts, op);
    const tickets = this.broker.kind !== 'redis';
    return controlTask(await this.redis(), this.keys, this.resultTtlMs, id, op, by, tickets);
  }

  /**
   * Revokes a task: it never runs, wherever it waits. Delayed or queued: taken off its queue. Already
   * fetched by a worker: taken from that worker, which drops it as soon as its control read tells it
   * (a few ms; if it had started in that moment, its `ctx.signal` aborts and its outcome is not
   * recorded). The record shows state `revoked` (its `result()` rejects with `E_REVOKED`). A task that
   * finished is left as it is (`outcome: 'finished'`). See docs/control.md.
   */
  async revoke(id: string, opts?: ControlOptions): Promise<ControlResult> {
    return this.controlOne(id, 'revoke', opts);
  }

  /**
   * Cancels a task. Running: its `ctx.signal` aborts on whichever worker runs it (as soon as that
   * worker's control read returns, a few ms; an isolated handler's thread or process is ended) and
   * the attempt ends as `cancelled` whatever the handler does then — not retried, not dead-lettered
   * (`outcome: 'cancelling'`; the record appears when the attempt ends). Not running yet: taken off
   * its queue, recorded `cancelled` (`outcome: 'cancelled'`). See docs/control.md.
   */
  async cancel(id: string, opts?: ControlOptions): Promise<ControlResult> {
    return this.controlOne(id, 'cancel', opts);
  }

  /**
   * Pauses a queue for every worker: each stops taking new tasks from it as soon as its control read
   * tells it (a few ms); tasks they run finish, tasks fetched and not started go back to the queue.
   * Enqueues go on (tasks wait). Resolves false when it was paused already. See docs/control.md.
   */
  async pause(queue: string, opts?: ControlOptions): Promise<boolean> {
    this.checkQueue(queue);
    return setPaused(await this.redis(), this.keys, queue, true, this.asker(opts, 'pause'));
  }

  /** Resumes a paused queue (see {@link pause}); resolves false when it was not paused. */
  async resume(queue: string, opts?: ControlOptions): Promise<boolean> {
    this.checkQueue(queue);
    return setPaused(await this.redis(), this.keys, queue, false, this.asker(opts, 'resume'));
  }

  /** Who paused a queue and when, or `null` when it is not paused. */
  async pausedInfo(queue: string): Promise<PauseInfo | null> {
    this.checkQueue(queue);
    const [info] = await readPaused(await this.redis(), this.keys, [queue]);
    return info ?? null;
  }

  /**
   * Deletes a queue's waiting and delayed tasks (retries waiting for their time included); tasks
   * workers hold run on. Resolves how many of each went. The deleted tasks leave no record (a lookup
   * says unknown). Works in batches, so a big queue does not hold Redis. See docs/control.md.
   */
  async purge(queue: string): Promise<PurgeResult> {
    this.checkQueue(queue);
    const waiting = await this.waitingTasks();
    if (waiting) return purgeBrokerQueue(await this.redis(), this.keys, waiting, queue);
    return purgeQueue(await this.redis(), this.keys, queue);
  }

  /**
   * How many tasks a queue holds: waiting, active, delayed, dead. Redis failures are `E_REDIS`. On
   * RabbitMQ `waiting` is the queue's message count (ready, not pushed to a worker yet), and `active`
   * is not counted (0).
   */
  async queueStats(queue: string): Promise<QueueStats> {
    if (!this.queues.includes(queue)) throw new UnknownQueueError(queue, this.queues, 'nothing was counted');
    const waiting = await this.waitingTasks();
    const [stats, ready] = await Promise.all([
      queueStats(await this.redis(), this.keys, queue),
      waiting?.count(queue),
    ]);
    return ready === undefined ? stats : { ...stats, inStream: ready, waiting: ready };
  }

  /** The broker's count and purge of waiting tasks when it keeps them out of Redis (RabbitMQ). */
  private async waitingTasks(): Promise<WaitingTasks | undefined> {
    return this.broker.kind === 'redis' ? undefined : (await this.publisher()).waiting;
  }

  /**
   * Waits for a task by id; see {@link TaskHandle.result}. An id of a queue the app does not declare
   * rejects at once (`E_UNKNOWN_QUEUE`), so does one Redis knows nothing of (`E_NOT_FOUND`).
   */
  async waitForResult(id: string, opts: { timeout?: Duration } = {}): Promise<unknown> {
    const timeout = opts.timeout === undefined ? undefined : toMs(opts.timeout);
    if (opts.timeout !== undefined && timeout === undefined) {
      throw new OptionsError('result options', [{ path: 'timeout', message: 'is not a duration' }]);
    }
    const { queue } = parseTaskId(id);
    if (!this.queues.includes(queue)) {
      throw new UnknownQueueError(queue, this.queues, `there is no task ${id} of this app to wait for`);
    }
    return this.waiter.wait(id, timeout);
  }

  /**
   * Task events of every worker on these queues (default: all of the app's), from any process:
   * `succeeded`, `retried`, `dead`, `expired`, and `failed` / `task` for several at once. Built on
   * the completion streams result waiters read, so it adds no Redis write. Close it when done (the
   * app's close does too).
   *
   * @example
   * ```ts
   * const events = app.subscribe();
   * events.on('dead', (e) => alert(`${e.task} ${e.id} failed: ${e.error.message}`));
   * await events.ready;
   * ```
   */
  subscribe(queues: readonly string[] = this.queues): TaskSubscription {
    const unknown = queues.find((q) => !this.queues.includes(q));
    if (unknown !== undefined) throw new UnknownQueueError(unknown, this.queues, 'nothing was subscribed to');
    const sub = new TaskSubscription(this, [...new Set(queues)]);
    this.subscriptions.add(sub);
    const close = sub.close.bind(sub);
    sub.close = () => {
      this.subscriptions.delete(sub);
      return close();
    };
    return sub;
  }

  /**
   * Closes the app: pending result waits reject with `E_CLOSED` at once, the connections close, and
   * every later call that needs Redis rejects with `E_CLOSED` (closing is final). Safe to repeat.
   */
  async close(): Promise<void> {
    await this.lifecycle?.drain();
    this.waiter.close();
    this.memoryGuard.stop();
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    const p = this.publishing;
    this.publishing = undefined;
    if (p) await (await p.catch(() => undefined))?.close?.();
    const c = this.connection;
    this.connection = undefined;
    if (c) await (await c.catch(() => undefined))?.quit().catch(() => undefined);
    if (this.ownsPayloadStore) await this.payloadStore?.close().catch(() => undefined);
  }
}

/** True when `x` is a tasuki app (from any copy of the package). */
export function isTasukiApp(x: unknown): x is Tasuki {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[APP_BRAND] === true;
}

/** Creates a tasuki app. */
export function tasuki(options: AppOptions = {}): Tasuki {
  return new Tasuki(options);
}
