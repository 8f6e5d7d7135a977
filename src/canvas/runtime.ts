/**
 * What a canvas does as its members finish: start the next member of a chain, join a group's
 * results, end the canvas. The producer runs {@link CanvasRuntime.start} for the first members; a
 * worker runs {@link CanvasRuntime.step} for each continuation the settle step appended when a
 * member finished (see docs/canvas.md for the design and its guarantees).
 *
 * Every write here is idempotent, because a continuation can run twice (its worker died after the
 * writes, before its own settle): a member is enqueued at most once (`canvas_start`, a marker in its
 * queue's slot), a group member's result is counted once (`canvas_join`, HSETNX per member), and a
 * canvas ends once (`canvas_close`).
 */
import type { Publisher } from '../broker/broker.js';
import type { RedisConnection } from '../connection/redis.js';
import {
  PayloadTooLargeError,
  TaskArgsError,
  TasukiError,
  UnknownTaskError,
  type RemoteError,
} from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import type { NewPayload, PayloadStore } from '../payloads/store.js';
import { loadResult } from '../results/stored-result.js';
import { EVENTS_MAX_LEN } from '../broker/redis-streams.js';
import * as scripts from '../scripts/catalogue.js';
import type { SignatureTask } from '../task/signature.js';
import type { ResultSource } from '../task/task.js';
import { CANVAS_TASK } from '../wire/fields.js';
import { formatTaskId } from '../wire/ids.js';
import { encodeRecord, toStoredError, type TaskRecord } from '../wire/record.js';
import { decodeDefinition, memberLocal, memberRef, parseRef, type CanvasDefinition } from './definition.js';

/** What a canvas needs from its app (a `Tasuki` app is one). */
export interface CanvasHost extends ResultSource {
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  /** How long records, and the canvas's state, are kept, ms. */
  readonly resultTtlMs: number;
  readonly payloadStore: PayloadStore | undefined;
  readonly log: Logger;
  redis(): Promise<RedisConnection>;
  /** The app's publisher: on a broker with an outbox (RabbitMQ) members are published from it. */
  publisher(): Promise<Publisher>;
  getTaskDefinition(name: string): SignatureTask | undefined;
  taskNames(): string[];
}

/** The member that failed a canvas, as stored in its state (field `x`). */
export interface CanvasFailure {
  /** The member's task id. */
  id: string;
  /** Its task name. */
  task: string;
  /** Its final state (`failed` or `expired`). */
  state: string;
  error: RemoteError;
}

/** A continuation: a member's reference and its final record (see finish.lua). */
export interface Continuation {
  c: string;
  r: TaskRecord;
}

/** A member ready to be enqueued: its task id (local part), queue, message and claim-checked payload. */
export interface Start {
  id: string;
  queue: string;
  message: string;
  payload?: NewPayload | undefined;
}

/** A member that cannot start with the input it was given (see {@link CanvasRuntime.prepare}). */
export class MemberNotStarted extends TasukiError {
  constructor(
    readonly failure: CanvasFailure,
    readonly reason: TasukiError,
  ) {
    super(reason.code, reason.message, { cause: reason });
    this.name = 'MemberNotStarted';
  }
}

/** Definitions read by this process, by canvas id: they never change. Bounded. */
const CACHE_MAX = 256;

export class CanvasRuntime {
  private readonly cache = new Map<string, CanvasDefinition>();

  constructor(private readonly host: CanvasHost) {}

  /**
   * The messages of the members that start when the node starts with `input` (the previous member's
   * result; `undefined` at the head). Throws `E_PAYLOAD_TOO_LARGE` or `E_TASK_ARGS` when an input
   * cannot be a member's arguments, before anything is written.
   */
  prepare(def: CanvasDefinition, node: number, input: unknown): Start[] {
    const n = def.n[node] as CanvasDefinition['n'][number];
    if (n.k !== 't') {
      return n.k === 'c'
        ? this.prepare(def, n.m[0] as number, input)
        : n.m.flatMap((m) => this.prepare(def, m, input));
    }
    const task = this.host.getTaskDefinition(n.t);
    if (!task) throw new UnknownTaskError(n.t, this.host.taskNames());
    const id = memberLocal(def, node);
    try {
      const args = n.b === 1 ? n.a : input;
      return [
        { ...task.memberMessage(args, { id, canvas: memberRef(def, node), queue: n.q }), id, queue: n.q },
      ];
    } catch (err) {
      if (err instanceof PayloadTooLargeError || err instanceof TaskArgsError) {
        throw new MemberNotStarted(
          { id: formatTaskId(id, n.q), task: n.t, state: 'failed', error: toStoredError(err) },
          err,
        );
      }
      throw err;
    }
  }

  /** Enqueues prepared members, each at most once (a continuation may run twice). */
  async start(starts: readonly Start[]): Promise<void> {
    await Promise.all(starts.map((s) => this.enqueue(s)));
  }

  /** One continuation: the member at its reference finished with its record. */
  async step(continuation: Continuation): Promise<void> {
    const ref = parseRef(continuation.c);
    const def = await this.live(ref.canvas, ref.home);
    if (def === undefined) return; // failed already, or expired: nothing more runs
    const record = continuation.r;
    const n = def.n[ref.node];
    if (n?.k !== 't') throw new TasukiError('E_CANVAS', `canvas ${ref.canvas} has no member ${ref.node}`);
    if (record.state !== 'succeeded') {
      await this.fail(def, {
        id: formatTaskId(memberLocal(def, ref.node), n.q),
        task: n.t,
        state: record.state,
        error: record.error ?? { name: 'Error', message: record.state },
      });
      return;
    }
    const id = formatTaskId(memberLocal(def, ref.node), n.q);
    const value =
      record.resultClaim === undefined
        ? record.result
        : await loadResult(this.host.payloadStore, id, record.resultClaim);
    await this.completed(def, ref.node, value);
  }

  /** Opens a new canvas: its definition and pending record, before its first members are enqueued. */
  async open(def: CanvasDefinition, encoded: string): Promise<void> {
    const k = this.host.keys;
    const record: TaskRecord = {
      state: 'queued',
      task: CANVAS_TASK,
      attempt: 1,
      worker: '',
      startedAt: def.at,
      finishedAt: 0,
    };
    await scripts.run(
      await this.host.redis(),
      scripts.canvasOpen(
        {
          canvas: k.canvas.key({ queue: def.q, canvas: def.id }),
          result: k.result.key({ queue: def.q, task: def.id }),
        },
        { ttlMs: this.host.resultTtlMs, definition: encoded, record: encodeRecord(record) },
      ),
    );
    this.remember(def);
  }

  /** The member that failed the canvas, if one did (and its state has not expired). */
  async failure(canvas: string, home: string): Promise<CanvasFailure | undefined> {
    const redis = await this.host.redis();
    const raw = await redis.hget(this.host.keys.canvas.key({ queue: home, canvas }), 'x');
    return raw === null ? undefined : (JSON.parse(raw) as CanvasFailure);
  }

  /**
   * Starts what comes next with a member's result. An input that cannot be that member's arguments
   * (too big without a payload store, or nothing at all: a handler that returned undefined) will
   * never be: that member fails, and the canvas with it, instead of the continuation retrying.
   */
  private async next(def: CanvasDefinition, node: number, input: unknown): Promise<void> {
    let starts: Start[];
    try {
      starts = this.prepare(def, node, input);
    } catch (err) {
      if (!(err instanceof MemberNotStarted)) throw err;
      await this.fail(def, err.failure);
      return;
    }
    await this.start(starts);
  }

  /** The node finished with `value`: what comes after it, up the tree. */
  private async completed(def: CanvasDefinition, node: number, value: unknown): Promise<void> {
    const n = def.n[node] as CanvasDefinition['n'][number];
    if (n.p < 0) {
      await this.close(def, value);
      return;
    }
    const parent = def.n[n.p] as CanvasDefinition['n'][number];
    if (parent.k === 'c') {
      const next = parent.m[n.i + 1];
      return next === undefined ? this.completed(def, n.p, value) : this.next(def, next, value);
    }
    if (parent.k !== 'g') throw new TasukiError('E_CANVAS', `canvas ${def.id}: node ${n.p} has no members`);
    const [state, ...values] = await scripts.run(
      await this.host.redis(),
      scripts.canvasJoin(
        { canvas: this.host.keys.canvas.key({ queue: def.q, canvas: def.id }) },
        {
          ttlMs: this.host.resultTtlMs,
          group: n.p,
          member: n.i,
          value: JSON.stringify(value) ?? 'null',
          size: parent.m.length,
        },
      ),
    );
    if (state === 1) {
      await this.completed(
        def,
        n.p,
        values.map((v) => JSON.parse(v) as unknown),
      );
    }
  }

  /**
   * Redis Streams: the member goes into its queue's stream with its marker. A broker with an outbox
   * (RabbitMQ): into its queue's outbox with its marker, then published from there; if that publish
   * fails, the member waits in the outbox until a worker relays it (it is started either way).
   */
  private async enqueue({ id, queue, message, payload }: Start): Promise<void> {
    if (payload !== undefined) await (this.host.payloadStore as PayloadStore).put(payload);
    const k = this.host.keys;
    const outbox = (await this.host.publisher()).outbox;
    const written = await scripts.run(
      await this.host.redis(),
      scripts.canvasStart(
        {
          member: k.canvasMember.key({ queue, task: id }),
          stream: outbox ? k.outbox.key({ queue }) : k.stream.key({ queue }),
          parked: k.parked.key({ queue }),
        },
        { ttlMs: this.host.resultTtlMs, message, id, outbox: outbox !== undefined },
      ),
    );
    if (outbox === undefined || typeof written !== 'string') return;
    await outbox.send(queue, [{ entry: written, id, message }]).catch((err: unknown) => {
      this.host.log.warn(
        { err, taskId: formatTaskId(id, queue) },
        'could not publish a canvas member to the broker; it waits in the outbox until a worker relays it (after claimIdle)',
      );
    });
  }

  private close(def: CanvasDefinition, value: unknown): Promise<number> {
    const record = this.record(def, 'succeeded');
    record.result = value;
    return this.end(def, 'ok', record, '');
  }

  private fail(def: CanvasDefinition, failure: CanvasFailure): Promise<number> {
    const record = this.record(def, 'failed');
    record.error = {
      name: 'CanvasFailedError',
      code: 'E_CANVAS_FAILED',
      message: `member ${failure.task} (${failure.id}) ${failure.state}: ${failure.error.name}: ${failure.error.message}`,
    };
    return this.end(def, 'failed', record, JSON.stringify(failure));
  }

  private record(def: CanvasDefinition, state: TaskRecord['state']): TaskRecord {
    return { state, task: CANVAS_TASK, attempt: 1, worker: '', startedAt: def.at, finishedAt: Date.now() };
  }

  private async end(
    def: CanvasDefinition,
    outcome: 'ok' | 'failed',
    record: TaskRecord,
    failure: string,
  ): Promise<number> {
    const k = this.host.keys;
    return scripts.run(
      await this.host.redis(),
      scripts.canvasClose(
        {
          canvas: k.canvas.key({ queue: def.q, canvas: def.id }),
          result: k.result.key({ queue: def.q, task: def.id }),
          events: k.events.key({ queue: def.q }),
        },
        {
          ttlMs: this.host.resultTtlMs,
          outcome,
          record: encodeRecord(record),
          id: def.id,
          eventsMaxLen: EVENTS_MAX_LEN,
          failure,
        },
      ),
    );
  }

  /** The canvas's definition while it can go on: `undefined` once it failed, or its state expired. */
  private async live(canvas: string, home: string): Promise<CanvasDefinition | undefined> {
    const redis = await this.host.redis();
    const key = this.host.keys.canvas.key({ queue: home, canvas });
    const cached = this.cache.get(canvas);
    if (cached) return (await redis.hexists(key, 'x')) === 1 ? undefined : cached;
    const [raw, failed] = await redis.hmget(key, 'd', 'x');
    if (failed !== null || raw === null || raw === undefined) return undefined;
    const def = decodeDefinition(raw);
    this.remember(def);
    return def;
  }

  private remember(def: CanvasDefinition): void {
    const oldest = this.cache.keys().next();
    if (this.cache.size >= CACHE_MAX && oldest.done !== true) this.cache.delete(oldest.value);
    this.cache.set(def.id, def);
  }
}

const runtimes = new WeakMap<CanvasHost, CanvasRuntime>();

/** The canvas runtime of an app (one per app, so its definition cache is shared). */
export function runtimeOf(host: CanvasHost): CanvasRuntime {
  let r = runtimes.get(host);
  if (r === undefined) {
    r = new CanvasRuntime(host);
    runtimes.set(host, r);
  }
  return r;
}
