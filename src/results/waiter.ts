import type { Redis } from 'ioredis';
import { TaskFailedError, TimeoutError, TasukiError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { parseTaskId } from '../wire/ids.js';
import { parseCompletion } from '../wire/completion.js';
import { decodeRecord, TERMINAL_STATES, type TaskRecord } from '../wire/record.js';

/** How long a queue's completion stream is still followed after its last waiter left, ms. */
const FOLLOW_IDLE_MS = 5000;

interface Waiter {
  resolve: (r: TaskRecord) => void;
}

/**
 * Serves every result waiter of a process with one blocking connection: an XREAD BLOCK on the
 * completion stream of each queue someone waits on. When a batch of task ids finishes, the
 * waiters of those ids read their records. No polling loop, no Pub/Sub.
 */
export class ResultWaiter {
  /** queue → local id → waiters */
  private readonly waiting = new Map<string, Map<string, Set<Waiter>>>();
  /** queue → last completion-stream id read */
  private readonly cursors = new Map<string, string>();
  /** queue → when someone last waited on it */
  private readonly lastWait = new Map<string, number>();
  private blocking: Redis | undefined;
  private blockingId: number | undefined;
  private running = false;
  private closed = false;

  constructor(
    private readonly redis: () => Promise<Redis>,
    private readonly keys: TasukiKeys,
  ) {}

  /** Resolves the task's final record; rejects on failure or timeout. */
  async wait(id: string, timeoutMs: number | undefined): Promise<unknown> {
    const { local, queue } = parseTaskId(id);
    if (this.closed)
      throw new TasukiError('E_CONFIG', 'the app is closed; create a new one to wait for results');
    let waiter!: Waiter;
    const done = new Promise<TaskRecord>((resolve) => (waiter = { resolve }));
    // Registered before anything else, so the loop keeps following this queue for us.
    this.add(queue, local, waiter);
    let timer: NodeJS.Timeout | undefined;
    try {
      const redis = await this.redis();
      await this.follow(redis, queue);
      // Registered first, then read: a task that finished before we started listening is found here,
      // one that finishes later shows up on the completion stream.
      const raw = await redis.get(this.keys.result.key({ queue, task: local }));
      if (raw !== null) {
        const r = decodeRecord(raw);
        if (TERMINAL_STATES.has(r.state)) waiter.resolve(r);
      }
      const timeout =
        timeoutMs === undefined
          ? undefined
          : new Promise<never>((_, reject) => {
              timer = setTimeout(
                () => reject(new TimeoutError(`task ${id} did not finish within ${timeoutMs} ms`)),
                timeoutMs,
              );
            });
      const record = await (timeout ? Promise.race([done, timeout]) : done);
      if (record.state !== 'succeeded') {
        throw new TaskFailedError(id, record.error ?? { name: 'Error', message: record.state });
      }
      return record.result;
    } finally {
      if (timer) clearTimeout(timer);
      this.remove(queue, local, waiter);
    }
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
  private async follow(redis: Redis, queue: string): Promise<void> {
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
    if (!this.running) {
      this.running = true;
      this.run(redis).catch(() => {
        this.running = false;
      });
    }
  }

  private async run(redis: Redis): Promise<void> {
    if (!this.blocking) {
      this.blocking = redis.duplicate({ connectionName: 'tasuki:results', enableAutoPipelining: false });
      this.blockingId = Number(await this.blocking.client('ID'));
    }
    const conn = this.blocking;
    for (;;) {
      if (this.closed || this.cursors.size === 0) {
        this.running = false;
        return;
      }
      const queues = [...this.cursors.keys()];
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await conn.xread(
          'COUNT',
          1000,
          'BLOCK',
          10_000,
          'STREAMS',
          ...queues.map((q) => this.keys.events.key({ queue: q })),
          ...queues.map((q) => this.cursors.get(q) as string),
        );
      } catch {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
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
            const raw = inline?.[i];
            if (raw !== undefined) this.resolve(queue, local, raw);
            else wanted.push(local);
          });
        }
        if (wanted.length) await this.deliver(redis, queue, wanted).catch(() => undefined);
      }
      if (reply === null) {
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
  }

  /** Reads the records of finished tasks someone waits on (one MGET per queue: one cluster slot). */
  private async deliver(redis: Redis, queue: string, locals: string[]): Promise<void> {
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

  close(): void {
    this.closed = true;
    this.blocking?.disconnect();
    this.blocking = undefined;
  }
}
