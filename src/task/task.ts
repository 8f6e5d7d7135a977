/**
 * Tasks as a producer sees them: `Task.enqueue` / `enqueueMany` check arguments and options before
 * anything reaches Redis, then write each task with one command; `TaskHandle` waits for and looks up
 * the task it names.
 */
import type { ControlOptions, ControlResult } from '../control/control.js';
import { inspect } from 'node:util';
import type { ChainableCommander } from 'ioredis';
import { isRedirection, refreshSlots, type RedisConnection } from '../connection/redis.js';
import { isOomReply, isUnreachable } from '../connection/failures.js';
import { execTransaction } from '../connection/transaction.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import {
  MemoryFullError,
  OptionsError,
  PayloadStoreError,
  PayloadTooLargeError,
  redisError,
  TasukiError,
  TaskArgsError,
  type FieldIssue,
  type MemoryReading,
} from '../errors.js';
import { ENTRY_OVERHEAD_BYTES } from '../limits/memory-guard.js';
import { compileRateLimits, type CompiledRateLimits } from '../limits/rate.js';
import { claimOf } from '../payloads/claim.js';
import type { NewPayload, PayloadStore } from '../payloads/store.js';
import * as scripts from '../scripts/catalogue.js';
import type { Duration } from '../util/duration.js';
import { delayedLocalId, formatTaskId } from '../wire/ids.js';
import { CLAIM_MESSAGE_FIELD, MESSAGE_FIELD } from '../wire/fields.js';
import { encodeClaimMessage, encodeMessage, type TraceContext } from '../wire/message.js';
import { resolveOptions, type EnqueueOptions, type ResolvedOptions } from './enqueue-options.js';
import { validate, type Checked, type InferInput, type StandardSchemaV1 } from './schema.js';
import type { Jsonified } from '../results/jsonified.js';
import type { TaskInfo } from '../results/lookup.js';
import type { FollowProgressOptions } from '../progress/reader.js';
import type { Progress } from '../progress/value.js';
import type { TaskDefinition } from './definition.js';
import { registerForIsolate, resolveIsolation, type ResolvedIsolation } from './isolation.js';
import type { TaskTracer } from './tracer.js';
import type { TypedEmitter } from '../events/emitter.js';
import type { EnqueueEventMap } from '../events/event-map.js';
import { Signature, type SignatureOptions } from './signature.js';

export type { TaskContext, TaskDefinition } from './definition.js';

/** What a task needs from its app to enqueue and to be waited on (a `Tasuki` app is one). */
export interface TaskHost extends ResultSource {
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  readonly idempotencyTtlMs: number;
  readonly maxPayloadBytes: number;
  /** Where arguments over the threshold go (a claim check); `undefined`: none configured. */
  readonly payloadStore: PayloadStore | undefined;
  /** Encoded arguments over this many bytes go to the payload store (when there is one). */
  readonly payloadThreshold: number;
  /** Without a payload store: the largest encoded arguments kept inline in Redis. */
  readonly payloadInlineLimit: number;
  /** How long a payload is kept past its task's due time, ms. */
  readonly payloadTtlMs: number;
  /** The app's command connection. */
  redis(): Promise<RedisConnection>;
  /** Where `enqueued` events go; built only while someone listens. */
  readonly enqueueEvents?: TypedEmitter<EnqueueEventMap> | undefined;
  /** Traces enqueues (the app option `tracing`); `undefined`: untraced, and nothing is called. */
  readonly tracer?: TaskTracer | undefined;
  /** Replicas that must acknowledge an enqueue (0 or absent: none), and how long to wait for them. */
  readonly enqueueReplicas?: { count: number; timeoutMs: number } | undefined;
  /**
   * The memory guard's admission of an enqueue of `task` (`bulk`: enqueueMany): `undefined` to go on
   * at once, else a promise that waits for headroom or rejects with `E_MEMORY_FULL` (see
   * {@link MemoryFullError}).
   */
  admit?(task: string, bulk: boolean, bytes: number): Promise<void> | undefined;
  /** What the memory guard last read of Redis's memory, for the message of an OOM refusal. */
  memoryReading?(): MemoryReading | undefined;
}

/**
 * A failed enqueue write as a typed error: Redis's OOM refusal becomes {@link MemoryFullError}
 * (retryable, says what is full), anything else `E_REDIS`. Either way nothing was written.
 */
function enqueueError(what: string, err: unknown, reading: MemoryReading | undefined): TasukiError {
  if (isOomReply(err)) return new MemoryFullError(what, { reading }, { cause: err });
  return redisError(what, err);
}

/** Where a handle waits for and looks up its task. */
export interface ResultSource {
  waitForResult(id: string, opts?: { timeout?: Duration }): Promise<unknown>;
  getTask(id: string): Promise<TaskInfo | null>;
  getProgress(id: string): Promise<Progress | null>;
  followProgress(id: string, opts?: FollowProgressOptions): AsyncIterable<Progress>;
  revoke(id: string, opts?: ControlOptions): Promise<ControlResult>;
  cancel(id: string, opts?: ControlOptions): Promise<ControlResult>;
}

/**
 * A handle on an enqueued task. `R` is the result as `result()` resolves it: for a handler that
 * returns `T`, the task's handles are `TaskHandle<Jsonified<T>>` (the result went through JSON).
 */
export class TaskHandle<R = unknown> {
  /** `false` when an idempotency key matched an earlier task: this handle is for that task. */
  readonly created: boolean;
  readonly #results: ResultSource;

  constructor(
    results: ResultSource,
    readonly id: string,
    readonly queue: string,
    readonly task: string,
    created = true,
  ) {
    this.#results = results;
    this.created = created;
  }

  /** Prints as `TaskHandle { id, queue, task, created }`, not the app behind it. */
  [inspect.custom](): string {
    return `TaskHandle ${inspect(this.toJSON(), { breakLength: Infinity })}`;
  }

  toJSON(): { id: string; queue: string; task: string; created: boolean } {
    return { id: this.id, queue: this.queue, task: this.task, created: this.created };
  }

  /**
   * Waits for the task to finish and resolves its result as it came back through JSON (typed
   * `Jsonified<T>` for a handler returning `T`: a `Date` is a string, a `Map` is `{}`, undefined
   * properties are gone), or rejects with `TaskFailedError` (the handler's error as `remote`),
   * `TimeoutError` (the timeout runs from the call, Redis outages included), `E_NOT_FOUND` (Redis
   * knows nothing of the id) or `E_CLOSED` (the app was closed). Blocks on the queue's completion
   * stream, shared by every waiter of this process: no polling, no Pub/Sub.
   */
  result(opts: { timeout?: Duration } = {}): Promise<R> {
    return this.#results.waitForResult(this.id, opts) as Promise<R>;
  }

  /** The task's state now (see {@link Tasuki.getTask}). */
  info(): Promise<TaskInfo | null> {
    return this.#results.getTask(this.id);
  }

  /** The latest progress the handler reported (`ctx.progress`), or `null` when none. */
  progress(): Promise<Progress | null> {
    return this.#results.getProgress(this.id);
  }

  /**
   * The task's progress reports as they come, oldest first (see {@link Tasuki.followProgress}):
   * `for await (const p of handle.followProgress()) console.log(p.value)`. Ends when the task has
   * finished, or when `opts.signal` aborts.
   */
  followProgress(opts?: FollowProgressOptions): AsyncIterable<Progress> {
    return this.#results.followProgress(this.id, opts);
  }

  /** Revokes the task so it never runs (see {@link Tasuki.revoke}). */
  revoke(opts?: ControlOptions): Promise<ControlResult> {
    return this.#results.revoke(this.id, opts);
  }

  /** Cancels the task: stops it if it runs, takes it off its queue if not (see {@link Tasuki.cancel}). */
  cancel(opts?: ControlOptions): Promise<ControlResult> {
    return this.#results.cancel(this.id, opts);
  }
}

interface Prepared {
  opts: ResolvedOptions;
  message: string;
  localId: string | undefined;
  /** Claim-checked arguments to put in the payload store before the message is written. */
  payload?: NewPayload;
}

/** A defined task: enqueue it, or let a worker run it. */
export class Task<S extends StandardSchemaV1 = StandardSchemaV1, R = unknown> {
  readonly name: string;
  readonly queue: string;
  /**
   * Encoded arguments up to this many bytes go inline, as before the claim check; anything bigger
   * takes the slow path (payload store, or a size error). One comparison on the hot path.
   */
  private readonly inlineMax: number;
  /** The task's rate limits, ready for the worker; `undefined` without any (then they cost nothing). */
  readonly rateLimits: CompiledRateLimits | undefined;
  /** Where the handler runs when not in the worker's event loop (the `isolation` option, resolved). */
  readonly isolation: ResolvedIsolation | undefined;

  constructor(
    private readonly app: TaskHost,
    readonly definition: TaskDefinition<S, R>,
  ) {
    this.name = definition.name;
    this.queue = definition.queue ?? 'default';
    const spill = app.payloadStore
      ? (definition.payloadThreshold ?? app.payloadThreshold)
      : app.payloadInlineLimit;
    this.inlineMax = Math.min(spill, app.maxPayloadBytes);
    this.rateLimits = compileRateLimits(definition.rateLimit);
    this.isolation = resolveIsolation(definition.name, definition.isolation);
    registerForIsolate(definition.name, definition);
  }

  /** The app this task belongs to (a canvas checks that all its members share one). */
  get host(): TaskHost {
    return this.app;
  }

  /**
   * This task as a canvas member (see `chain`, `group`, `chord` and docs/canvas.md). Without
   * arguments it takes the previous member's result as its arguments (typed: that result must be
   * what this task's schema accepts); with arguments it runs with them and ignores its input.
   *
   * @example
   * ```ts
   * await chain(fetchPage.s({ url }), parsePage.s(), store.s()).enqueue();
   * ```
   */
  s(): Signature<InferInput<S>, Jsonified<R>>;
  s(args: InferInput<S>, options?: SignatureOptions): Signature<unknown, Jsonified<R>>;
  s(...given: [] | [args: InferInput<S>, options?: SignatureOptions]): Signature<never, Jsonified<R>> {
    return given.length === 0
      ? new Signature(this, false, undefined)
      : new Signature(this, true, given[0], given[1] ?? {});
  }

  /** Checks arguments against the schema (a canvas's bound arguments, before anything is written). */
  async checkArgs(args: unknown, path: string): Promise<void> {
    const checked = await validate(this.definition.schema, args);
    if (!checked.ok) {
      throw new TaskArgsError(
        this.name,
        checked.issues.map((i) => ({ ...i, path: [path, i.path].filter(Boolean).join('.') })),
      );
    }
  }

  /**
   * The message of a canvas member: its task id and canvas reference in the meta, its arguments
   * claim-checked when big. Not validated here: the arguments may be the previous member's result,
   * and the worker validates every message it runs (a mismatch fails the member, and the canvas).
   */
  memberMessage(
    args: unknown,
    member: { id: string; canvas: string; queue: string },
  ): { message: string; payload?: NewPayload | undefined } {
    const now = Date.now();
    const opts = resolveOptions({ queue: member.queue }, this.queue, this.app.queues, now, '');
    const p = this.encode(args, { ok: true, value: args }, opts, now, '', undefined, member);
    return { message: p.message, payload: p.payload };
  }

  /** Checks one item and encodes its message; synchronous unless the schema is asynchronous. */
  private prepare(
    args: unknown,
    options: EnqueueOptions | undefined,
    now: number,
    path: string,
    trace?: TraceContext,
  ): Prepared | Promise<Prepared> {
    const opts = resolveOptions(options, this.queue, this.app.queues, now, path);
    const checked = validate(this.definition.schema, args);
    return checked instanceof Promise
      ? checked.then((c) => this.encode(args, c, opts, now, path, trace))
      : this.encode(args, checked, opts, now, path, trace);
  }

  private encode(
    args: unknown,
    checked: Checked<unknown>,
    opts: ResolvedOptions,
    now: number,
    path: string,
    trace: TraceContext | undefined,
    member?: { id: string; canvas: string },
  ): Prepared {
    if (!checked.ok) {
      throw new TaskArgsError(
        this.name,
        checked.issues.map((i) => ({ ...i, path: [path, i.path].filter(Boolean).join('.') })),
      );
    }
    let argsJson: string | undefined;
    try {
      argsJson = JSON.stringify(args);
    } catch (err) {
      throw new TaskArgsError(this.name, [
        { path: path, message: `not JSON-serialisable: ${(err as Error).message}` },
      ]);
    }
    if (argsJson === undefined) {
      throw new TaskArgsError(this.name, [
        { path, message: 'not JSON-serialisable (undefined or a function)' },
      ]);
    }
    const size = Buffer.byteLength(argsJson);
    if (size > this.inlineMax) return this.claimCheck(argsJson, size, opts, now, path, trace, member);
    const localId = member?.id ?? (opts.due > 0 ? delayedLocalId(now) : undefined);
    const message = encodeMessage(this.name, argsJson, {
      id: localId,
      expiresAt: opts.expiresAt,
      storeResult: opts.storeResult,
      trace,
      canvas: member?.canvas,
    });
    return { opts, message, localId };
  }

  /**
   * Arguments too big to go inline: a payload for the store and a claim-checked message (format 2),
   * or a typed error when they are over `maxPayloadBytes` or there is no store.
   */
  private claimCheck(
    argsJson: string,
    size: number,
    opts: ResolvedOptions,
    now: number,
    path: string,
    trace: TraceContext | undefined,
    member?: { id: string; canvas: string },
  ): Prepared {
    const app = this.app;
    if (size > app.maxPayloadBytes) {
      throw new PayloadTooLargeError(this.name, path, size, app.maxPayloadBytes, 'max');
    }
    if (!app.payloadStore) {
      throw new PayloadTooLargeError(this.name, path, size, app.payloadInlineLimit, 'inline');
    }
    const localId = member?.id ?? (opts.due > 0 ? delayedLocalId(now) : undefined);
    // Kept for the TTL from when the task is due, so a task delayed past the TTL still finds it.
    const { claim, payload } = claimOf(argsJson, (opts.due > 0 ? opts.due : now) + app.payloadTtlMs);
    const message = encodeClaimMessage(this.name, claim, {
      id: localId,
      expiresAt: opts.expiresAt,
      storeResult: opts.storeResult,
      trace,
      canvas: member?.canvas,
    });
    return { opts, message, localId, payload };
  }

  /** The one command that writes a prepared task: a script call, or a plain XADD. */
  private command(p: Prepared): scripts.ScriptCall<unknown> | { stream: string; message: string } {
    const k = this.app.keys;
    const queue = p.opts.queue;
    if (p.opts.idempotencyKey !== undefined) {
      return scripts.enqueueUnique(
        {
          idempotency: k.idempotency.key({ queue, key: p.opts.idempotencyKey }),
          stream: k.stream.key({ queue }),
          delayed: k.delayed.key({ queue }),
          parked: k.parked.key({ queue }),
        },
        { ttlMs: this.app.idempotencyTtlMs, message: p.message, due: p.opts.due, id: p.localId ?? '' },
      );
    }
    if (p.localId !== undefined) {
      return scripts.schedule(
        { delayed: k.delayed.key({ queue }), parked: k.parked.key({ queue }) },
        { id: p.localId, due: p.opts.due, message: p.message },
      );
    }
    return { stream: k.stream.key({ queue }), message: p.message };
  }

  /** Adds the command for one prepared task to a MULTI. */
  private write(tx: ChainableCommander, p: Prepared): void {
    const c = this.command(p);
    if ('script' in c) scripts.add(tx, c);
    else tx.xadd(c.stream, '*', p.payload ? CLAIM_MESSAGE_FIELD : MESSAGE_FIELD, c.message);
  }

  private handleFor(p: Prepared, reply: unknown): TaskHandle<Jsonified<R>> {
    const queue = p.opts.queue;
    let handle: TaskHandle<Jsonified<R>>;
    if (p.opts.idempotencyKey !== undefined) {
      const [created, local] = reply as [number, string];
      handle = new TaskHandle<Jsonified<R>>(
        this.app,
        formatTaskId(local, queue),
        queue,
        this.name,
        created === 1,
      );
    } else {
      const local = p.localId ?? (reply as string);
      handle = new TaskHandle<Jsonified<R>>(this.app, formatTaskId(local, queue), queue, this.name);
    }
    const events = this.app.enqueueEvents;
    if (events?.listening && handle.created) {
      events.emit('enqueued', { type: 'enqueued', id: handle.id, queue, task: this.name, at: Date.now() });
    }
    return handle;
  }

  /**
   * Enqueues one task. Arguments and options are checked first; on any error nothing is written.
   * One XADD (one ZADD+HSET script when delayed, one script with an idempotency key).
   */
  enqueue(args: InferInput<S>, options?: EnqueueOptions): Promise<TaskHandle<Jsonified<R>>> {
    // Not async: untraced, the enqueue's own promise is the only one made.
    const tracer = this.app.tracer;
    if (tracer === undefined) return this.enqueueOne(args, options, undefined);
    return tracer.enqueue(this.name, (trace) => this.enqueueOne(args, options, trace));
  }

  private async enqueueOne(
    args: InferInput<S>,
    options: EnqueueOptions | undefined,
    trace: TraceContext | undefined,
  ): Promise<TaskHandle<Jsonified<R>>> {
    const p = await this.prepare(args, options, Date.now(), '', trace);
    const redis = await this.app.redis();
    // A cached flag: no Redis call unless Redis was above the high watermark at the last sample.
    const held = this.app.admit?.(this.name, false, p.message.length + ENTRY_OVERHEAD_BYTES);
    if (held) await held;
    if (p.payload !== undefined) return this.enqueueClaimed(redis, p, p.payload);
    let reply: unknown;
    try {
      reply = await this.send(redis, p);
    } catch (err) {
      throw enqueueError(`enqueue of task "${this.name}"`, err, this.app.memoryReading?.());
    }
    return this.handleFor(p, reply);
  }

  /**
   * Writes one prepared task: its script, or a plain XADD to the field of its message format (a plain
   * command, so that concurrent enqueues share one write through auto-pipelining).
   */
  private send(redis: RedisConnection, p: Prepared): Promise<unknown> {
    const c = this.command(p);
    const replicas = this.app.enqueueReplicas;
    if (replicas && replicas.count > 0) return this.sendReplicated(redis, p, replicas);
    return 'script' in c
      ? scripts.run(redis, c)
      : redis.xadd(c.stream, '*', p.payload ? CLAIM_MESSAGE_FIELD : MESSAGE_FIELD, c.message);
  }

  /**
   * {@link send} followed by `WAIT` in one pipeline (on a cluster it goes to the queue's node, as
   * its key decides): resolves once `count` replicas have the task, else `E_REPLICAS`.
   */
  private async sendReplicated(
    redis: RedisConnection,
    p: Prepared,
    replicas: { count: number; timeoutMs: number },
  ): Promise<unknown> {
    const what = `enqueue of task "${this.name}"`;
    // A redirection (failover, slot migration) means nothing was written: ask the cluster where the
    // slot is now and send again. ioredis follows redirections of single commands itself, not of a
    // pipeline holding a write and WAIT.
    for (let attempt = 1; ; attempt++) {
      const tx = redis.pipeline();
      this.write(tx, p);
      tx.wait(replicas.count, replicas.timeoutMs);
      let replies: [Error | null, unknown][] | null;
      try {
        replies = await tx.exec();
      } catch (err) {
        throw redisError(what, err);
      }
      const [writeErr, reply] = replies?.[0] ?? [new Error('no reply'), undefined];
      if (writeErr) {
        if (attempt < 10 && isRedirection(writeErr)) {
          await refreshSlots(redis);
          await new Promise((r) => setTimeout(r, 50 * attempt));
          continue;
        }
        throw redisError(what, writeErr);
      }
      // Written: from here on an error must not say otherwise (a failover can cut the WAIT short).
      const [waitErr, acked] = replies?.[1] ?? [new Error('no reply to WAIT'), 0];
      if (waitErr || Number(acked) < replicas.count) {
        const why = waitErr
          ? `WAIT failed (${waitErr.message})`
          : `only ${String(acked)} of ${replicas.count} replica(s) acknowledged it within ${replicas.timeoutMs} ms`;
        throw new TasukiError(
          'E_REPLICAS',
          `${what}: the primary has it but ${why}; it may run, or be lost if the primary fails now. ` +
            'Check the replicas (INFO replication) or lower the app option enqueueReplicas.',
          waitErr ? { cause: waitErr } : undefined,
        );
      }
      return reply;
    }
  }

  /**
   * {@link enqueue} of claim-checked arguments: the payload is written first, then the message; if
   * Redis refused the message, the payload is deleted again (best effort; it expires anyway).
   */
  private async enqueueClaimed(
    redis: RedisConnection,
    p: Prepared,
    payload: NewPayload,
  ): Promise<TaskHandle<Jsonified<R>>> {
    const store = this.app.payloadStore as PayloadStore;
    try {
      await store.put(payload);
    } catch (err) {
      throw new PayloadStoreError(
        `enqueue of task "${this.name}": writing its arguments to ${store.description} (nothing was written to Redis)`,
        err,
      );
    }
    let reply: unknown;
    try {
      reply = await this.send(redis, p);
    } catch (err) {
      await discard(store, [payload.ref], err);
      throw enqueueError(`enqueue of task "${this.name}"`, err, this.app.memoryReading?.());
    }
    const handle = this.handleFor(p, reply);
    // An idempotency key that named an earlier task: that task has its own payload.
    if (!handle.created) await discard(store, [payload.ref]);
    return handle;
  }

  /**
   * Enqueues many tasks in one round trip per queue. Every item is checked before anything is
   * written; items of one queue are written in one MULTI, so a Redis refusal (e.g. OOM) writes none
   * of them. Resolves the handles in the order given.
   */
  enqueueMany(
    items: readonly { args: InferInput<S>; options?: EnqueueOptions }[],
  ): Promise<TaskHandle<Jsonified<R>>[]> {
    const tracer = this.app.tracer;
    if (tracer === undefined || !Array.isArray(items)) return this.enqueueAll(items, undefined);
    return tracer.enqueueMany(this.name, items.length, (trace) => this.enqueueAll(items, trace));
  }

  private async enqueueAll(
    items: readonly { args: InferInput<S>; options?: EnqueueOptions }[],
    trace: TraceContext | undefined,
  ): Promise<TaskHandle<Jsonified<R>>[]> {
    if (!Array.isArray(items)) {
      throw new TaskArgsError(this.name, [
        { path: '(items)', message: 'enqueueMany takes an array of { args, options? }' },
      ]);
    }
    const now = Date.now();
    const prepared: Prepared[] = [];
    const issues: FieldIssue[] = [];
    const optionIssues: FieldIssue[] = [];
    for (let i = 0; i < items.length; i++) {
      const item: unknown = items[i];
      try {
        if (typeof item !== 'object' || item === null || !('args' in item)) {
          throw new TaskArgsError(this.name, [{ path: `[${i}]`, message: 'expected { args, options? }' }]);
        }
        const { args, options } = item as { args: unknown; options?: EnqueueOptions };
        const p = this.prepare(args, options, now, `[${i}]`, trace);
        prepared.push(p instanceof Promise ? await p : p);
      } catch (err) {
        if (err instanceof TaskArgsError) issues.push(...err.issues);
        else if (err instanceof OptionsError) optionIssues.push(...err.issues);
        else throw err;
      }
    }
    // Every bad item is reported at once; argument errors take precedence in the error's type.
    if (issues.length) throw new TaskArgsError(this.name, [...issues, ...optionIssues]);
    if (optionIssues.length) throw new OptionsError('enqueue options', optionIssues);
    const byQueue = new Map<string, number[]>();
    prepared.forEach((p, i) => {
      const list = byQueue.get(p.opts.queue);
      if (list) list.push(i);
      else byQueue.set(p.opts.queue, [i]);
    });
    const redis = await this.app.redis();
    const handles: TaskHandle<Jsonified<R>>[] = new Array<TaskHandle<Jsonified<R>>>(prepared.length);
    const what = `bulk enqueue of task "${this.name}"`;
    let bytes = 0;
    for (const p of prepared) bytes += p.message.length + ENTRY_OVERHEAD_BYTES;
    const held = this.app.admit?.(this.name, true, bytes);
    if (held) await held;
    const store = this.app.payloadStore;
    const payloads = store ? prepared.flatMap((p) => (p.payload ? [p.payload] : [])) : [];
    if (store && payloads.length) {
      try {
        await store.putMany(payloads);
      } catch (err) {
        throw new PayloadStoreError(
          `${what}: writing ${payloads.length} payloads to ${store.description} (nothing was written to Redis)`,
          err,
        );
      }
    }
    /** Payloads of these items, deleted again after their queue's write failed (or was a repeat). */
    const drop = async (indexes: readonly number[], err?: unknown): Promise<void> => {
      const refs = indexes.flatMap((i) => {
        const ref = (prepared[i] as Prepared).payload?.ref;
        return ref === undefined ? [] : [ref];
      });
      if (store && refs.length) await discard(store, refs, err);
    };
    await Promise.all(
      [...byQueue].map(async ([queue, indexes]) => {
        if (payloads.length) {
          try {
            await this.writeQueue(redis, queue, indexes, prepared, handles, what);
          } catch (err) {
            await drop(indexes, err);
            throw err;
          }
          await drop(indexes.filter((i) => !(handles[i] as TaskHandle).created));
        } else {
          await this.writeQueue(redis, queue, indexes, prepared, handles, what);
        }
      }),
    );
    return handles;
  }

  /** Writes one queue's items of a bulk enqueue and fills in their handles. */
  private async writeQueue(
    redis: RedisConnection,
    queue: string,
    indexes: readonly number[],
    prepared: readonly Prepared[],
    handles: TaskHandle<Jsonified<R>>[],
    what: string,
  ): Promise<void> {
    // Tasks that run at once go in one enqueue_bulk script call (one command for all of them);
    // delayed or idempotent ones keep their own script, all in one MULTI when there are any.
    const plain = indexes.filter((i) => isPlain(prepared[i] as Prepared));
    const other = indexes.filter((i) => !isPlain(prepared[i] as Prepared));
    const bulk = scripts.enqueueBulk(
      { stream: this.app.keys.stream.key({ queue }) },
      plain.map((i) => (prepared[i] as Prepared).message),
    );
    let ids: string[] = [];
    let replies: unknown[] = [];
    if (other.length === 0) {
      try {
        ids = await scripts.run(redis, bulk);
      } catch (err) {
        throw enqueueError(what, err, this.app.memoryReading?.());
      }
    } else {
      const tx = redis.multi();
      if (plain.length) scripts.add(tx, bulk);
      for (const i of other) this.write(tx, prepared[i] as Prepared);
      try {
        replies = await execTransaction(tx, what);
      } catch (err) {
        // execTransaction keeps Redis's refusal as the cause: an OOM is E_MEMORY_FULL.
        throw isOomReply(err)
          ? new MemoryFullError(what, { reading: this.app.memoryReading?.() }, { cause: err })
          : err;
      }
      if (plain.length) ids = replies.shift() as string[];
    }
    plain.forEach((i, j) => (handles[i] = this.handleFor(prepared[i] as Prepared, ids[j])));
    other.forEach((i, j) => (handles[i] = this.handleFor(prepared[i] as Prepared, replies[j])));
  }
}

/**
 * Deletes payloads whose message was not written (or named an earlier task), best effort: a payload
 * left behind expires by its TTL. After a failure that leaves it unknown whether Redis took the
 * write (the connection dropped), the payload is kept: a task must never lose its arguments by our
 * doing.
 */
async function discard(store: PayloadStore, refs: readonly string[], failure?: unknown): Promise<void> {
  if (failure !== undefined && (isUnreachable(failure) || isUnreachable((failure as Error).cause))) return;
  await store.delete(refs).catch(() => undefined);
}

/** A task that runs at once with no idempotency key: a plain XADD. */
function isPlain(p: Prepared): boolean {
  return p.localId === undefined && p.opts.idempotencyKey === undefined;
}
