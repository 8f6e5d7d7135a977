import type { ChainableCommander, Redis, RedisOptions } from 'ioredis';
import { connect } from '../connection/connect.js';
import { redisUrlFromEnv } from '../connection/url.js';
import { OptionsError, TasukiError, UnknownQueueError, type FieldIssue } from '../errors.js';
import { tasukiKeys, DAY_MS, type TasukiKeys } from '../keys/tasuki-keys.js';
import type { Keyspace } from '../keys/registry.js';
import { createLogger, type Logger } from '../log/logger.js';
import { lookupTask, type TaskInfo } from '../results/lookup.js';
import { ResultWaiter } from '../results/waiter.js';
import { DeadLetters } from '../deadletters/dead-letters.js';
import { Locks } from '../lock/locks.js';
import type { LockOptions } from '../lock/options.js';
import { registerScripts } from '../scripts/catalogue.js';
import { toMs, type Duration } from '../util/duration.js';
import { QUEUE_NAME } from '../wire/ids.js';
import { queueStats, type QueueStats } from '../results/stats.js';
import { isStandardSchema, type StandardSchemaV1 } from '../task/schema.js';
import { Task, type TaskDefinition } from '../task/task.js';

const APP_BRAND: unique symbol = Symbol.for('tasuki.app') as never;

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
}

const KNOWN_OPTIONS = new Set([
  'redis',
  'redisOptions',
  'connectAttempts',
  'prefix',
  'queues',
  'resultTtl',
  'idempotencyTtl',
  'maxPayloadBytes',
  'deadLetterMaxLen',
  'deadLetterRetention',
  'logger',
]);

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
  readonly maxPayloadBytes: number;
  readonly deadLetterMaxLen: number;
  readonly deadLetterRetentionMs: number;
  readonly log: Logger;
  private readonly options: AppOptions;
  private readonly tasks = new Map<string, Task>();
  private connection: Promise<Redis> | undefined;
  private readonly waiter: ResultWaiter;
  private dlq: DeadLetters | undefined;

  constructor(options: AppOptions = {}) {
    const issues: FieldIssue[] = [];
    for (const k of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(k)) issues.push({ path: k, message: 'unknown option' });
    }
    const queues = options.queues ?? ['default'];
    if (!Array.isArray(queues) || queues.length === 0) {
      issues.push({ path: 'queues', message: 'must be a non-empty array of queue names' });
    } else {
      for (const q of queues) {
        if (typeof q !== 'string' || !QUEUE_NAME.test(q)) {
          issues.push({
            path: 'queues',
            message: `${JSON.stringify(q)} is not a valid queue name (1-64 of A-Z a-z 0-9 _ . -)`,
          });
        }
      }
    }
    const resultTtl = toMs(options.resultTtl ?? DAY_MS);
    if (!resultTtl)
      issues.push({
        path: 'resultTtl',
        message: `${JSON.stringify(options.resultTtl)} is not a positive duration`,
      });
    const idemTtl = toMs(options.idempotencyTtl ?? DAY_MS);
    if (!idemTtl) {
      issues.push({
        path: 'idempotencyTtl',
        message: `${JSON.stringify(options.idempotencyTtl)} is not a positive duration`,
      });
    }
    const maxPayload = options.maxPayloadBytes ?? 512 * 1024;
    if (!Number.isInteger(maxPayload) || maxPayload <= 0) {
      issues.push({ path: 'maxPayloadBytes', message: 'must be a positive integer' });
    }
    const deadMax = options.deadLetterMaxLen ?? 10_000;
    if (!Number.isInteger(deadMax) || deadMax <= 0) {
      issues.push({ path: 'deadLetterMaxLen', message: 'must be a positive integer' });
    }
    const deadRetention = toMs(options.deadLetterRetention ?? '7d');
    if (!deadRetention) {
      issues.push({
        path: 'deadLetterRetention',
        message: `${JSON.stringify(options.deadLetterRetention)} is not a positive duration`,
      });
    }
    if (issues.length) throw new OptionsError('app options', issues, 'E_CONFIG');
    this.deadLetterMaxLen = deadMax;
    this.deadLetterRetentionMs = deadRetention as number;
    this.options = options;
    this.queues = [...new Set(queues)];
    this.keys = tasukiKeys(options.prefix ?? 'tsk');
    this.resultTtlMs = resultTtl as number;
    this.idempotencyTtlMs = idemTtl as number;
    this.maxPayloadBytes = maxPayload;
    this.log = options.logger ?? createLogger();
    this.waiter = new ResultWaiter(() => this.redis(), this.keys);
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

  /** The keyspace registry: declare the app's own keys here so the catalogue and audit know them. */
  get keyspace(): Keyspace {
    return this.keys.space;
  }

  /** Defines a task. Its name must be unique in the app and its queue one the app declares. */
  task<S extends StandardSchemaV1, R>(definition: TaskDefinition<S, R>): Task<S, R> {
    const issues: FieldIssue[] = [];
    if (typeof definition.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(definition.name)) {
      issues.push({
        path: 'name',
        message: `${JSON.stringify(definition.name)} is not a task name (1-128 of A-Z a-z 0-9 _ . : -)`,
      });
    }
    if (!isStandardSchema(definition.schema)) {
      issues.push({ path: 'schema', message: 'must be a schema (zod, valibot... any Standard Schema)' });
    }
    if (typeof definition.handler !== 'function')
      issues.push({ path: 'handler', message: 'must be a function' });
    const ma = definition.maxAttempts;
    if (ma !== undefined && !(Number.isInteger(ma) && ma >= 1)) {
      issues.push({ path: 'maxAttempts', message: 'must be an integer >= 1' });
    }
    for (const f of ['timeLimit', 'softTimeLimit'] as const) {
      if (definition[f] !== undefined && !toMs(definition[f])) {
        issues.push({ path: f, message: `${JSON.stringify(definition[f])} is not a positive duration` });
      }
    }
    const b = definition.backoff;
    if (b !== undefined) {
      if (b.type !== 'exponential' && b.type !== 'fixed') {
        issues.push({ path: 'backoff.type', message: 'must be "exponential" or "fixed"' });
      }
      for (const f of ['delay', 'maxDelay'] as const) {
        const v = (b as Record<string, unknown>)[f];
        if (v !== undefined && toMs(v) === undefined) {
          issues.push({ path: `backoff.${f}`, message: `${JSON.stringify(v)} is not a duration` });
        }
      }
      if (b.type === 'fixed' && b.delay === undefined) {
        issues.push({ path: 'backoff.delay', message: 'is required for fixed backoff' });
      }
    }
    const r = definition.retryOn;
    if (r !== undefined && !Array.isArray(r) && typeof r !== 'function') {
      issues.push({ path: 'retryOn', message: 'must be an array of error classes or a predicate' });
    } else if (typeof r === 'function' && (r as { prototype?: unknown }).prototype instanceof Error) {
      issues.push({ path: 'retryOn', message: 'is an error class; wrap it in an array: retryOn: [MyError]' });
    }
    if (issues.length) throw new OptionsError(`task definition "${String(definition.name)}"`, issues);
    if (this.tasks.has(definition.name)) {
      throw new TasukiError(
        'E_DUPLICATE_TASK',
        `task "${definition.name}" is already defined in this app; task names must be unique`,
      );
    }
    const queue = definition.queue ?? 'default';
    if (!this.queues.includes(queue)) throw new UnknownQueueError(queue, this.queues);
    const task = new Task<S, R>(this, definition);
    this.tasks.set(task.name, task as unknown as Task);
    return task;
  }

  /** The task with this name, if defined. */
  getTaskDefinition(name: string): Task | undefined {
    return this.tasks.get(name);
  }

  /** Names of every defined task. */
  taskNames(): string[] {
    return [...this.tasks.keys()];
  }

  /** The app's Redis connection (connected on first use). */
  redis(): Promise<Redis> {
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
      }).then((r) => {
        registerScripts(r);
        return r;
      });
      this.connection.catch(() => (this.connection = undefined));
    }
    return this.connection;
  }

  /** The URL the app connects to (for workers that open their own connections). */
  redisUrl(): string | undefined {
    return this.options.redis ?? redisUrlFromEnv();
  }

  /** Extra connection settings workers reuse. */
  connectionOptions(): { redisOptions?: RedisOptions; startAttempts?: number } {
    return {
      ...(this.options.redisOptions ? { redisOptions: this.options.redisOptions } : {}),
      ...(this.options.connectAttempts !== undefined ? { startAttempts: this.options.connectAttempts } : {}),
    };
  }

  /**
   * Runs a pipeline or MULTI and returns its replies; a Redis refusal (OOM, ...) becomes an
   * `E_REDIS` error that says what was being done and that it was not written.
   */
  async exec(tx: ChainableCommander, what: string): Promise<unknown[]> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await tx.exec();
    } catch (err) {
      throw redisError(what, err);
    }
    if (!results)
      throw new TasukiError('E_REDIS', `${what} was aborted by Redis; nothing was written. Try again.`);
    const failed = results.find(([e]) => e);
    if (failed?.[0]) throw redisError(what, failed[0]);
    return results.map(([, r]) => r);
  }

  /** Looks a task up by id (state, result or error). `null` when unknown or its record expired. */
  async getTask(id: string): Promise<TaskInfo | null> {
    return lookupTask(await this.redis(), this.keys, id);
  }

  /** How many tasks a queue holds: waiting, active, delayed, dead. */
  async queueStats(queue: string): Promise<QueueStats> {
    if (!this.queues.includes(queue)) throw new UnknownQueueError(queue, this.queues);
    return queueStats(await this.redis(), this.keys, queue);
  }

  /** Waits for a task by id; see {@link TaskHandle.result}. */
  waitForResult(id: string, opts: { timeout?: Duration } = {}): Promise<unknown> {
    const timeout = opts.timeout === undefined ? undefined : toMs(opts.timeout);
    if (opts.timeout !== undefined && timeout === undefined) {
      return Promise.reject(
        new OptionsError('result options', [{ path: 'timeout', message: 'is not a duration' }]),
      );
    }
    return this.waiter.wait(id, timeout);
  }

  /** Closes the app's connections. Pending result waits reject. */
  async close(): Promise<void> {
    this.waiter.close();
    const c = this.connection;
    this.connection = undefined;
    if (c) await (await c.catch(() => undefined))?.quit().catch(() => undefined);
  }
}

/** A Redis refusal as an `E_REDIS` error that says what was being done. */
export function redisError(what: string, err: unknown): TasukiError {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof Error && err.name === 'MaxRetriesPerRequestError') {
    return new TasukiError(
      'E_REDIS',
      `${what} failed: Redis is unreachable (the connection is down and reconnecting); nothing was written. ` +
        `Try again later, or check that Redis runs and the URL is right.`,
      { cause: err },
    );
  }
  const hint = /OOM/.test(msg)
    ? ' Redis is at maxmemory: free memory or raise maxmemory (and check what fills it with `tasuki keys audit`).'
    : /EXECABORT/.test(msg)
      ? ''
      : ' Check that Redis is reachable and healthy.';
  return new TasukiError('E_REDIS', `${what} failed: Redis said "${msg}"; nothing was written.${hint}`, {
    cause: err,
  });
}

/** True when `x` is a tasuki app (from any copy of the package). */
export function isTasukiApp(x: unknown): x is Tasuki {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[APP_BRAND] === true;
}

/** Creates a tasuki app. */
export function tasuki(options: AppOptions = {}): Tasuki {
  return new Tasuki(options);
}
