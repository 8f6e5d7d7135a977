/**
 * Task events of every worker, seen from any process: a subscription follows the queues'
 * completion streams (the ones result waiters read; src/wire/completion.ts) on one blocking
 * connection of its own, so it adds no Redis write per task. Small batches carry their records in
 * the event; for a big batch it reads the records (one MGET per queue and read).
 */
import { duplicateConnection, isCluster, type RedisConnection } from '../connection/redis.js';
import { groupBySlot, readAcrossSlots } from '../connection/slots.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { parseCompletion } from '../wire/completion.js';
import { decodeRecord } from '../wire/record.js';
import { eventOfRecord, TaskEvents } from './event-map.js';

/** What a subscription needs of the app. */
export interface SubscriptionHost {
  redis(): Promise<RedisConnection>;
  readonly keys: TasukiKeys;
}

/** Longest XREAD BLOCK, ms (a close interrupts it sooner by disconnecting). */
const BLOCK_MS = 2000;
/** Completion events read per XREAD. */
const READ_COUNT = 500;

/**
 * Events of all tasks of some queues, from every worker, as the task event map types them:
 * `succeeded`, `retried`, `dead`, `expired` (and `failed`, `task`). Not `released` or `limited`:
 * those are a worker's own (`worker.on`). Events are delivered at most once per subscription,
 * from the moment it is {@link ready}; a subscriber that was away misses what happened meanwhile
 * (the task records stay: look tasks up by id).
 *
 * A big batch's event carries no records; they are read when the event is, so a task that was
 * retried again meanwhile reports its newer record, and one whose record is gone (expired, or
 * `storeResult: false` past its minute) is skipped.
 */
export class TaskSubscription extends TaskEvents {
  /** Resolves once the subscription follows its queues: events from then on are delivered. */
  readonly ready: Promise<void>;
  private readonly cursors = new Map<string, string>();
  private conn: RedisConnection | undefined;
  private closed = false;
  private loop: Promise<void> | undefined;
  /** Cluster only: which slot group blocks next. */
  private turn = 0;

  constructor(
    private readonly host: SubscriptionHost,
    readonly queues: readonly string[],
  ) {
    super();
    this.ready = this.start();
    // An error of ready is the caller's to see; the loop does not start without it.
    this.ready.catch(() => undefined);
  }

  private async start(): Promise<void> {
    const redis = await this.host.redis();
    for (const queue of this.queues) {
      const last = (await redis.xrevrange(this.host.keys.events.key({ queue }), '+', '-', 'COUNT', 1)) as [
        string,
        string[],
      ][];
      this.cursors.set(queue, last[0]?.[0] ?? '0-0');
    }
    if (this.closed) return;
    this.conn = duplicateConnection(redis, {
      connectionName: 'tasuki:events',
      enableAutoPipelining: false,
      maxRetriesPerRequest: null,
    });
    // Errors are seen by the reads; a listener keeps ioredis from printing each reconnect attempt.
    this.conn.on('error', () => undefined);
    this.loop = this.run(redis, this.conn);
  }

  private async run(redis: RedisConnection, conn: RedisConnection): Promise<void> {
    const keys = this.queues.map((queue) => this.host.keys.events.key({ queue }));
    while (!this.closed) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await this.read(conn);
      } catch {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const [key, entries] of reply ?? []) {
        const queue = this.queues[keys.indexOf(key)];
        if (queue === undefined) continue;
        await this.dispatch(redis, queue, entries).catch(() => undefined);
      }
    }
  }

  /**
   * One XREAD BLOCK over every queue on one server; on a cluster one per slot group (their streams
   * span slots), blocking a slice at most (see src/connection/slots.ts).
   */
  private async read(conn: RedisConnection): Promise<[string, [string, string[]][]][] | null> {
    type Reply = [string, [string, string[]][]][] | null;
    const xread = (qs: readonly string[], block: number | undefined): Promise<Reply> =>
      conn.xread(
        'COUNT',
        READ_COUNT,
        ...((block === undefined ? [] : ['BLOCK', block]) as ['BLOCK', number]),
        'STREAMS',
        ...qs.map((queue) => this.host.keys.events.key({ queue })),
        ...qs.map((q) => this.cursors.get(q) as string),
      );
    if (!isCluster(conn)) return xread(this.queues, BLOCK_MS);
    const groups = groupBySlot(this.queues, (queue) => this.host.keys.events.key({ queue }));
    const got = await readAcrossSlots(groups, this.turn++, Infinity, BLOCK_MS, async (qs, _n, block) => {
      return (await xread(qs, block)) ?? [];
    });
    return got.length ? got : null;
  }

  /** Emits the events of one queue's completion entries, in order. */
  private async dispatch(
    redis: RedisConnection,
    queue: string,
    entries: [string, string[]][],
  ): Promise<void> {
    const found: { local: string; raw: string | undefined }[] = [];
    const missing: number[] = [];
    for (const [entryId, fields] of entries) {
      this.cursors.set(queue, entryId);
      const { ids, records } = parseCompletion(fields);
      ids.forEach((local, i) => {
        const raw = records?.[i] || undefined;
        if (raw === undefined) missing.push(found.length);
        found.push({ local, raw });
      });
    }
    if (!this.listening) return;
    if (missing.length) {
      const raws = await redis.mget(
        ...missing.map((i) =>
          this.host.keys.result.key({ queue, task: (found[i] as { local: string }).local }),
        ),
      );
      missing.forEach((i, n) => ((found[i] as { raw: string | undefined }).raw = raws[n] ?? undefined));
    }
    for (const { local, raw } of found) {
      if (this.closed) return;
      if (raw === undefined) continue;
      const event = eventOfRecord(decodeRecord(raw), local, queue);
      if (event) this.emitTask(event);
    }
  }

  /** Stops following; no event is delivered after this resolves. Safe to repeat. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ready.catch(() => undefined);
    this.conn?.disconnect();
    await this.loop;
  }
}
