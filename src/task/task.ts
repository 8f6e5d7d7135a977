/**
 * Tasks as a producer sees them: `Task.enqueue` / `enqueueMany` check arguments and options before
 * anything reaches Redis, then write each task with one command; `TaskHandle` waits for and looks up
 * the task it names.
 */
import type { ControlOptions, ControlResult } from '../control/control.js';
import { inspect } from 'node:util';
import type { Publication, Published, Publisher } from '../broker/broker.js';
import { isOomReply, isUnreachable } from '../connection/failures.js';
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
import type { Duration } from '../util/duration.js';
import { delayedLocalId, formatTaskId, publishedLocalId } from '../wire/ids.js';
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
  readonly maxPayloadBytes: number;
  /** Where arguments over the threshold go (a claim check); `undefined`: none configured. */
  readonly payloadStore: PayloadStore | undefined;
  /** Encoded arguments over this many bytes go to the payload store (when there is one). */
  readonly payloadThreshold: number;
  /** Without a payload store: the largest encoded arguments kept inline in Redis. */
  readonly payloadInlineLimit: number;
  /** How long a payload is kept past its task's due time, ms. */
  readonly payloadTtlMs: number;
  /** The app's publisher (the broker's producer side, connected on first use). */
  publisher(): Promise<Publisher>;
  /**
   * False when the app's broker does not name tasks itself (RabbitMQ): every task then gets a local
   * id here, in its message. Known before connecting, so an enqueue needs no extra call for it.
   */
  readonly brokerMintsIds: boolean;
  /** Where `enqueued` events go; built only while someone listens. */
  readonly enqueueEvents?: TypedEmitter<EnqueueEventMap> | undefined;
  /** Traces enqueues (the app option `tracing`); `undefined`: untraced, and nothing is called. */
  readonly tracer?: TaskTracer | undefined;
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
 * (retryable, says what is full), a broker's own typed error stays as it is, anything else
 * `E_REDIS`. Either way nothing was written.
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

/** A checked and encoded task: what the publisher writes, plus what the handle needs. */
interface Prepared extends Publication {
  opts: ResolvedOptions;
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
  /** Priority level of enqueues that give none (the definition's `priority`, default 0). */
  readonly priority: number;

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
    this.priority = definition.priority ?? 0;
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
    const localId = member?.id ?? this.localIdOf(opts, now);
    const priority = member ? 0 : (opts.priority ?? this.priority);
    const message = encodeMessage(this.name, argsJson, {
      id: localId,
      expiresAt: opts.expiresAt,
      storeResult: opts.storeResult,
      trace,
      canvas: member?.canvas,
      priority,
    });
    return this.prepared(opts, message, localId, false, priority);
  }

  /** The local id a task gets here: for a delayed task, or on a broker that names none itself. */
  private localIdOf(opts: ResolvedOptions, now: number): string | undefined {
    if (opts.due > 0) return delayedLocalId(now);
    return this.app.brokerMintsIds ? undefined : publishedLocalId(now);
  }

  private prepared(
    opts: ResolvedOptions,
    message: string,
    localId: string | undefined,
    claimed: boolean,
    priority: number,
  ): Prepared {
    return {
      opts,
      queue: opts.queue,
      task: this.name,
      message,
      claimed,
      due: opts.due,
      localId,
      idempotencyKey: opts.idempotencyKey,
      priority,
    };
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
    const localId = member?.id ?? this.localIdOf(opts, now);
    // Kept for the TTL from when the task is due, so a task delayed past the TTL still finds it.
    const { claim, payload } = claimOf(argsJson, (opts.due > 0 ? opts.due : now) + app.payloadTtlMs);
    const priority = member ? 0 : (opts.priority ?? this.priority);
    const message = encodeClaimMessage(this.name, claim, {
      id: localId,
      expiresAt: opts.expiresAt,
      storeResult: opts.storeResult,
      trace,
      canvas: member?.canvas,
      priority,
    });
    return { ...this.prepared(opts, message, localId, true, priority), payload };
  }

  private handleFor(p: Prepared, reply: Published): TaskHandle<Jsonified<R>> {
    const queue = p.opts.queue;
    const handle =
      typeof reply === 'string'
        ? new TaskHandle<Jsonified<R>>(this.app, formatTaskId(reply, queue), queue, this.name)
        : new TaskHandle<Jsonified<R>>(
            this.app,
            formatTaskId(reply.local, queue),
            queue,
            this.name,
            reply.created,
          );
    const events = this.app.enqueueEvents;
    if (events?.listening && handle.created) {
      events.emit('enqueued', { type: 'enqueued', id: handle.id, queue, task: this.name, at: Date.now() });
    }
    return handle;
  }

  /**
   * Enqueues one task. Arguments and options are checked first; on any error nothing is written.
   * On Redis Streams one XADD (one ZADD+HSET script when delayed, one script with an idempotency
   * key); on RabbitMQ one publish, resolved by its confirm.
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
    const publisher = await this.app.publisher();
    // A cached flag: no Redis call unless Redis was above the high watermark at the last sample.
    const held = this.app.admit?.(this.name, false, p.message.length + ENTRY_OVERHEAD_BYTES);
    if (held) await held;
    if (p.payload !== undefined) return this.enqueueClaimed(publisher, p, p.payload);
    let reply: Published;
    try {
      reply = await send(publisher, p);
    } catch (err) {
      throw enqueueError(`enqueue of task "${this.name}"`, err, this.app.memoryReading?.());
    }
    return this.handleFor(p, reply);
  }

  /**
   * {@link enqueue} of claim-checked arguments: the payload is written first, then the message; if
   * Redis refused the message, the payload is deleted again (best effort; it expires anyway).
   */
  private async enqueueClaimed(
    publisher: Publisher,
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
    let reply: Published;
    try {
      reply = await send(publisher, p);
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
    const publisher = await this.app.publisher();
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
            await this.writeQueue(publisher, queue, indexes, prepared, handles, what);
          } catch (err) {
            await drop(indexes, err);
            throw err;
          }
          await drop(indexes.filter((i) => !(handles[i] as TaskHandle).created));
        } else {
          await this.writeQueue(publisher, queue, indexes, prepared, handles, what);
        }
      }),
    );
    return handles;
  }

  /** Writes one queue's items of a bulk enqueue and fills in their handles. */
  private async writeQueue(
    publisher: Publisher,
    queue: string,
    indexes: readonly number[],
    prepared: readonly Prepared[],
    handles: TaskHandle<Jsonified<R>>[],
    what: string,
  ): Promise<void> {
    let replies: Published[];
    try {
      replies = await publisher.publishMany(
        queue,
        indexes.map((i) => prepared[i] as Prepared),
      );
    } catch (err) {
      // A MULTI's refusal keeps Redis's reply as the cause: an OOM is E_MEMORY_FULL.
      throw enqueueError(what, err, this.app.memoryReading?.());
    }
    indexes.forEach(
      (i, j) => (handles[i] = this.handleFor(prepared[i] as Prepared, replies[j] as Published)),
    );
  }
}

/** Publishes one task: with an idempotency key through its at-most-once path. */
function send(publisher: Publisher, p: Prepared): Promise<Published> {
  return p.idempotencyKey === undefined ? publisher.publish(p) : publisher.publishUnique(p);
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
