import { duplicateConnection, isCluster, type RedisConnection } from '../connection/redis.js';
import { groupBySlot, readAcrossSlots } from '../connection/slots.js';
import { isUnreachable } from '../connection/failures.js';
import {
  ClosedError,
  redisError,
  TaskFailedError,
  TaskNotFoundError,
  TasukiError,
  TimeoutError,
} from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { parseTaskId } from '../wire/ids.js';
import { parseCompletion } from '../wire/completion.js';
import { decodeRecord, TERMINAL_STATES, type StoredError, type TaskState } from '../wire/record.js';
import type { PayloadStore } from '../payloads/store.js';
import type { PayloadClaim } from '../wire/message.js';
import { findCompletion, lookupTask } from './lookup.js';
import { loadResult } from './stored-result.js';

type ReadReply = [string, [string, string[]][]][] | null;

/** Longest XREAD BLOCK of the result loop, ms. */
const BLOCK_MS = 2000;

/** How long a queue's completion stream is still followed after its last waiter left, ms. */
const FOLLOW_IDLE_MS = 5000;
/** Longest pause between two attempts of a wait to reach Redis while it is unreachable, ms. */
const RETRY_MAX_MS = 1000;

/** What a waiter needs of a finished task: a record, or what the lookup found. */
interface Outcome {
  state: TaskState;
  result?: unknown;
  /** A result in the payload store: loaded before the wait resolves. */
  resultClaim?: PayloadClaim | undefined;
  error?: StoredError | undefined;
}

interface Waiter {
  resolve: (o: Outcome) => void;
  reject: (err: Error) => void;
}

/** One wait's progress: settled (it stops trying), and why Redis could not be reached, if it could not. */
interface WaitState {
  settled: boolean;
  unreachable: unknown;
}

/**
 * Serves every result waiter of a process with one blocking connection: an XREAD BLOCK on the
 * completion stream of each queue someone waits on. When a batch of task ids finishes, the
 * waiters of those ids read their records. No polling loop, no Pub/Sub.
 *
 * Outages: a wait's timeout runs from the call. While Redis is unreachable a wait keeps trying
 * (within its timeout, or until the app closes) and the blocking connection reconnects; only typed
 * errors come out: `TaskFailedError`, `TimeoutError`, `E_NOT_FOUND`, `E_CLOSED`, or `E_REDIS` for
 * an answer from Redis that is not "try again".
 */
export class ResultWaiter {
  /** queue → local id → waiters */
  private readonly waiting = new Map<string, Map<string, Set<Waiter>>>();
  /** queue → last completion-stream id read */
  private readonly cursors = new Map<string, string>();
  /** queue → when someone last waited on it */
  private readonly lastWait = new Map<string, number>();
  private blocking: RedisConnection | undefined;
  /** CLIENT ID of the blocking connection, as of its connection number {@link idOf}. */
  private blockingId: number | undefined;
  /** Times the blocking connection became ready (each reconnect gets a new CLIENT ID). */
  private readyCount = 0;
  private idOf = -1;
  /** The blocking connection's last error while it is down (for timeout messages). */
  private blockingDown: Error | undefined;
  private running = false;
  private closed = false;
  /** Cluster only: which slot group blocks next. */
  private turn = 0;
  /** Cluster only: when the last check of every waited task was. */
  private quietSince = Date.now();

  constructor(
    private readonly redis: () => Promise<RedisConnection>,
    private readonly keys: TasukiKeys,
    /** Where results too big for Redis are (see src/results/stored-result.ts). */
    private readonly payloads: () => PayloadStore | undefined = () => undefined,
    /**
     * Redis knows nothing of a task that waits in the broker (RabbitMQ: nothing is written to Redis
     * until it runs), so a task Redis does not know is waited for (up to the timeout) instead of
     * rejected with `E_NOT_FOUND`.
     */
    private readonly brokerHoldsUnknown = false,
  ) {}

  /** True once {@link close} was called: nothing more can be waited for. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Resolves the task's result; rejects with `TaskFailedError` (it failed or expired),
   * `TimeoutError`, `E_NOT_FOUND` (Redis knows nothing of the id) or `E_CLOSED`.
   */
  async wait(id: string, timeoutMs: number | undefined): Promise<unknown> {
    const { local, queue } = parseTaskId(id);
    if (this.closed) throw new ClosedError(`cannot wait for task ${id}`);
    let waiter!: Waiter;
    const done = new Promise<Outcome>((resolve, reject) => (waiter = { resolve, reject }));
    const state: WaitState = { settled: false, unreachable: undefined };
    // The timeout runs from the call, whatever Redis is doing.
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => waiter.reject(this.timeoutError(id, timeoutMs, state)), timeoutMs);
    // Registered before anything else, so the loop keeps following this queue for us.
    this.add(queue, local, waiter);
    void this.look(id, queue, waiter, state);
    try {
      const outcome = await done;
      if (outcome.state !== 'succeeded') {
        throw new TaskFailedError(id, outcome.error ?? { name: 'Error', message: outcome.state });
      }
      if (outcome.resultClaim !== undefined)
        return await loadResult(this.payloads(), id, outcome.resultClaim);
      return outcome.result;
    } finally {
      state.settled = true;
      clearTimeout(timer);
      this.remove(queue, local, waiter);
    }
  }

  /**
   * Follows the task's queue, then looks the task up once: a task that finished before we started
   * listening is found here, one that finishes later shows up on the completion stream, and one
   * Redis knows nothing of rejects at once. Redis unreachable: tries again until the wait settles.
   * Never rejects; the outcome goes to the waiter.
   */
  private async look(id: string, queue: string, waiter: Waiter, state: WaitState): Promise<void> {
    for (let attempt = 1; !state.settled; attempt++) {
      try {
        const redis = await this.redis();
        await this.follow(redis, queue);
        const info = await lookupTask(redis, this.keys, id);
        if (info === null) {
          // Finished without a stored record (storeResult: false) before we followed: its event.
          const raw = await findCompletion(redis, this.keys, queue, parseTaskId(id).local);
          state.unreachable = undefined;
          const record = raw === undefined ? undefined : decodeRecord(raw);
          if (record && TERMINAL_STATES.has(record.state)) waiter.resolve(record);
          else if (!this.brokerHoldsUnknown) waiter.reject(new TaskNotFoundError(id));
        } else {
          state.unreachable = undefined;
          if (TERMINAL_STATES.has(info.state)) waiter.resolve(info);
        }
        return;
      } catch (err) {
        if (!isTransient(err)) {
          waiter.reject(redisError(`waiting for task ${id}`, err, { wrote: false }));
          return;
        }
        state.unreachable = err;
        await new Promise((r) => setTimeout(r, Math.min(RETRY_MAX_MS, 100 * 2 ** (attempt - 1))));
      }
    }
  }

  private timeoutError(id: string, timeoutMs: number, state: WaitState): TimeoutError {
    const down = state.unreachable ?? (this.blocking?.status === 'ready' ? undefined : this.blockingDown);
    const reason = down instanceof Error ? down.message : JSON.stringify(down);
    return new TimeoutError(
      `task ${id} did not finish within ${timeoutMs} ms` +
        (down === undefined ? '' : `; Redis was unreachable meanwhile (${reason}), the wait kept trying`),
      down === undefined ? undefined : { cause: down },
    );
  }

  private add(queue: string, local: string, w: Waiter): void {
    this.lastWait.set(queue, Date.now());
    let byId = this.waiting.get(queue);
    if (!byId) this.waiting.set(queue, (byId = new Map<string, Set<Waiter>>()));
    let set = byId.get(local);
    if (!set) byId.set(local, (set = new Set<Waiter>()));
    set.add(w);
  }

  private remove(queue: string, local: string, w: Waiter): void {
    const byId = this.waiting.get(queue);
    const set = byId?.get(local);
    if (!byId || !set) return;
    set.delete(w);
    if (set.size === 0) byId.delete(local);
  }

  /** Makes sure the loop reads this queue's completion stream from no later than now. */
  private async follow(redis: RedisConnection, queue: string): Promise<void> {
    if (!this.cursors.has(queue)) {
      const last = (await redis.xrevrange(this.keys.events.key({ queue }), '+', '-', 'COUNT', 1)) as [
        string,
        string[],
      ][];
      if (!this.cursors.has(queue)) {
        this.cursors.set(queue, last[0]?.[0] ?? '0-0');
        if (this.blockingId !== undefined) await redis.client('UNBLOCK', this.blockingId);
      }
    }
    if (!this.running && !this.closed) {
      this.running = true;
      void this.run(redis);
    }
  }

  /** The blocking connection: a duplicate of the app's that waits through outages instead of failing. */
  private openBlocking(redis: RedisConnection): RedisConnection {
    const conn = duplicateConnection(redis, {
      connectionName: 'tasuki:results',
      enableAutoPipelining: false,
      maxRetriesPerRequest: null,
    });
    // Every connection needs an error listener: without one, ioredis prints each failed reconnect
    // as "[ioredis] Unhandled error event" on stderr. The reads themselves see the outage.
    conn.on('error', (err: Error) => (this.blockingDown = err));
    conn.on('ready', () => {
      this.readyCount++;
      this.blockingDown = undefined;
    });
    return conn;
  }

  /** The loop: one XREAD BLOCK at a time on every followed queue. Never rejects. */
  private async run(redis: RedisConnection): Promise<void> {
    const conn = (this.blocking ??= this.openBlocking(redis));
    for (;;) {
      if (this.closed || this.cursors.size === 0) {
        this.running = false;
        return;
      }
      let queues: string[] = [];
      let reply: ReadReply;
      try {
        // On a cluster CLIENT ID would reach any node: reads there are bounded by a slice instead.
        if (this.idOf !== this.readyCount && !isCluster(conn)) {
          // A new connection (first, or after a reconnect) has a new id; follow() unblocks by id.
          this.blockingId = Number(await conn.client('ID'));
          this.idOf = this.readyCount;
        }
        // Read after the last await: a queue followed while CLIENT ID was pending must be in this
        // read (follow() could not unblock a read it had no id for).
        queues = [...this.cursors.keys()];
        reply = await this.read(conn, queues);
      } catch {
        if (this.closed) {
          this.running = false;
          return;
        }
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      try {
        await this.dispatch(redis, queues, reply);
      } catch {
        // A malformed event or a failed read of records must not stop the loop; waits time out.
      }
    }
  }

  /**
   * One read of the followed queues' completion streams: one XREAD BLOCK over all of them on one
   * server; on a cluster one XREAD per slot group (see readAcrossSlots), blocking a slice at most.
   */
  private async read(conn: RedisConnection, queues: string[]): Promise<ReadReply> {
    const xread = (qs: readonly string[], block: number | undefined): Promise<ReadReply> =>
      conn.xread(
        'COUNT',
        1000,
        ...((block === undefined ? [] : ['BLOCK', block]) as ['BLOCK', number]),
        'STREAMS',
        ...qs.map((q) => this.keys.events.key({ queue: q })),
        ...qs.map((q) => this.cursors.get(q) as string),
      );
    // Short enough that a queue followed while its UNBLOCK crossed the read is read soon.
    if (!isCluster(conn)) return xread(queues, BLOCK_MS);
    const groups = groupBySlot(queues, (q) => this.keys.events.key({ queue: q }));
    const got = await readAcrossSlots(groups, this.turn++, Infinity, BLOCK_MS, async (qs, _n, block) => {
      return (await xread(qs, block)) ?? [];
    });
    return got.length ? got : null;
  }

  /** Resolves the waiters of the tasks a read reported finished. */
  private async dispatch(
    redis: RedisConnection,
    queues: string[],
    reply: [string, [string, string[]][]][] | null,
  ): Promise<void> {
    for (const [streamKey, entries] of reply ?? []) {
      const queue = queues.find((q) => this.keys.events.key({ queue: q }) === streamKey);
      if (queue === undefined) continue;
      const byId = this.waiting.get(queue);
      const wanted: string[] = [];
      for (const [entryId, fields] of entries) {
        this.cursors.set(queue, entryId);
        if (!byId || byId.size === 0) continue;
        // Small batches carry their records (one per line): no read needed.
        const { ids, records: inline } = parseCompletion(fields);
        ids.forEach((local, i) => {
          if (!byId.has(local)) return;
          // A record left out of the event is '' (a big batch carries only some of its records).
          const raw = inline?.[i];
          if (raw) this.resolve(queue, local, raw);
          else wanted.push(local);
        });
      }
      if (wanted.length) await this.deliver(redis, queue, wanted).catch(() => undefined);
    }
    if (reply === null && this.quietFor(BLOCK_MS)) {
      // Nothing finished for a whole block: check every waited task once, in case an event was
      // trimmed from a completion stream before this process read it.
      for (const [queue, byId] of this.waiting) {
        if (byId.size) await this.deliver(redis, queue, [...byId.keys()]).catch(() => undefined);
      }
    }
    // Stop following queues nobody has waited on for a while; a later waiter starts from that
    // moment again. (Following a little longer saves steady low-rate waiters a restart each.)
    const now = Date.now();
    for (const q of queues) {
      if ((this.waiting.get(q)?.size ?? 0) > 0) this.lastWait.set(q, now);
      else if (now - (this.lastWait.get(q) ?? 0) > FOLLOW_IDLE_MS) this.cursors.delete(q);
    }
  }

  /**
   * True when no read returned anything for `ms` (one server: every empty read, which blocked that
   * long; a cluster's reads block a slice only, so it counts).
   */
  private quietFor(ms: number): boolean {
    if (this.blocking === undefined || !isCluster(this.blocking)) return true;
    const now = Date.now();
    if (now - this.quietSince < ms) return false;
    this.quietSince = now;
    return true;
  }

  /** Reads the records of finished tasks someone waits on (one MGET per queue: one cluster slot). */
  private async deliver(redis: RedisConnection, queue: string, locals: string[]): Promise<void> {
    const raws = await redis.mget(...locals.map((task) => this.keys.result.key({ queue, task })));
    locals.forEach((local, i) => {
      const raw = raws[i];
      if (raw !== null && raw !== undefined) this.resolve(queue, local, raw);
    });
  }

  /** Resolves the waiters of a task whose record is final. */
  private resolve(queue: string, local: string, raw: string): void {
    const r = decodeRecord(raw);
    if (!TERMINAL_STATES.has(r.state)) return;
    for (const waiter of this.waiting.get(queue)?.get(local) ?? []) waiter.resolve(r);
  }

  /** Rejects every pending wait with `E_CLOSED` and closes the blocking connection. Final. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [queue, byId] of this.waiting) {
      for (const [local, set] of byId) {
        const err = new ClosedError(`stopped waiting for task ${local}@${queue}`);
        for (const waiter of set) waiter.reject(err);
      }
    }
    this.blocking?.disconnect();
    this.blocking = undefined;
  }
}

/** Failures a wait rides out: Redis unreachable for now (the connection reconnects), or never reached yet. */
function isTransient(err: unknown): boolean {
  if (err instanceof TasukiError) {
    return err.code === 'E_CONNECTION' || (err.code === 'E_REDIS' && isUnreachable(err.cause));
  }
  return isUnreachable(err);
}
