/**
 * The broker on Redis Streams: one stream per queue read through the consumer group `tasuki`, one
 * Lua script per atomic operation (src/scripts/lua), every key from the keyspace registry.
 */
import { isCluster, type RedisConnection } from '../connection/redis.js';
import { groupBySlot, readAcrossSlots } from '../connection/slots.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import { GROUP } from '../wire/fields.js';
import type { Broker, Delivery, HandBack, Settlement } from './broker.js';

/** Approximate cap of each queue's completion stream. */
export const EVENTS_MAX_LEN = 10_000;

/** What the Redis Streams broker needs: two connections, the keys, and how long things are kept. */
export interface RedisStreamsSettings {
  /** Commands and scripts. */
  redis: RedisConnection;
  /** Blocking reads only (XREADGROUP BLOCK). */
  blocking: RedisConnection;
  keys: TasukiKeys;
  resultTtlMs: number;
  deadLetterMaxLen: number;
  deadLetterRetentionMs: number;
}

type ReadReply = [string, [string, string[] | null][]][] | null;

function isOom(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('OOM');
}

/**
 * A delivery, made by a constructor rather than a literal: V8 then leaves room in the object for
 * the fields a worker adds while it holds the delivery (src/worker/holdings.ts), instead of
 * allocating a second block for them on every task.
 */
class StreamDelivery implements Delivery {
  constructor(
    readonly queue: string,
    readonly entry: string,
    readonly fields: readonly string[],
    readonly deliveries: number,
  ) {}
}

export class RedisStreamsBroker implements Broker {
  private readonly redis: RedisConnection;
  private readonly blocking: RedisConnection;
  private readonly keys: TasukiKeys;
  private blockingId: number | undefined;
  private readonly queueByStream = new Map<string, string>();
  /** Cluster only: the served queues' streams grouped by slot (one XREADGROUP can span one slot). */
  private slotGroups: { queues: readonly string[]; groups: string[][] } | undefined;
  private turn = 0;
  /** Queues paused for this worker (see {@link pause}); empty for almost every worker. */
  private readonly paused = new Set<string>();
  /** The last queue list fetched from, and the queues of it not paused (made once per change). */
  private served: { queues: readonly string[]; unpaused: readonly string[] } | undefined;
  /** End the waits of fetches while every queue is paused (up to two reads are in flight). */
  private readonly idles = new Set<() => void>();

  constructor(private readonly settings: RedisStreamsSettings) {
    this.redis = settings.redis;
    this.blocking = settings.blocking;
    this.keys = settings.keys;
    scripts.registerScripts(this.redis);
  }

  private stream(queue: string): string {
    return this.keys.stream.key({ queue });
  }

  async prepare(queues: readonly string[]): Promise<void> {
    // On a cluster CLIENT ID would reach any node; its reads are bounded by a slice instead.
    if (!isCluster(this.blocking)) this.blockingId = Number(await this.blocking.client('ID'));
    for (const queue of queues) {
      const key = this.stream(queue);
      this.queueByStream.set(key, queue);
      try {
        await this.redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (err instanceof Error && err.message.includes('BUSYGROUP')) continue;
        // At maxmemory Redis refuses XGROUP CREATE before it looks whether the group exists: a
        // group that exists is all a worker needs, so it can start and drain a full Redis.
        if (!isOom(err) || !(await this.groupExists(key))) throw err;
      }
    }
    try {
      await this.redis.sadd(this.keys.queues.key({}), ...queues);
    } catch (err) {
      // The queue list is for tools; at maxmemory it is left as it is rather than stop a worker.
      if (!isOom(err)) throw err;
    }
  }

  private async groupExists(stream: string): Promise<boolean> {
    try {
      const groups = (await this.redis.xinfo('GROUPS', stream)) as unknown[][];
      return groups.some((g) => g[1] === GROUP);
    } catch {
      return false;
    }
  }

  async fetch(
    queues: readonly string[],
    consumer: string,
    count: number,
    blockMs: number,
  ): Promise<Delivery[]> {
    if (this.paused.size > 0) {
      queues = this.unpausedOf(queues);
      if (queues.length === 0) return this.idle(blockMs);
    }
    try {
      if (isCluster(this.blocking)) {
        const groups = this.groupsOf(queues);
        return await readAcrossSlots(groups, this.turn++, count, blockMs, (streams, n, block) =>
          this.read(streams, consumer, n, block),
        );
      }
      // One server: one XREADGROUP over every queue.
      return await this.read(
        queues.map((q) => this.stream(q)),
        consumer,
        count,
        blockMs,
      );
    } catch (err) {
      // A group deleted under us (FLUSHALL, a restart without persistence): make it again.
      if (err instanceof Error && err.message.includes('NOGROUP'))
        await this.prepare(queues).catch(() => undefined);
      throw err;
    }
  }

  /** The queues of `queues` not paused (the same array while the pauses do not change). */
  private unpausedOf(queues: readonly string[]): readonly string[] {
    if (this.served?.queues !== queues) {
      this.served = { queues, unpaused: queues.filter((q) => !this.paused.has(q)) };
    }
    return this.served.unpaused;
  }

  /** Every queue is paused: wait as a read would, until resumed or interrupted. */
  private idle(blockMs: number): Promise<Delivery[]> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => end(), blockMs);
      const end = (): void => {
        clearTimeout(timer);
        this.idles.delete(end);
        resolve([]);
      };
      this.idles.add(end);
    });
  }

  async pause(queue: string): Promise<void> {
    if (this.paused.has(queue)) return;
    this.paused.add(queue);
    this.served = undefined;
    // A read in flight over the queue could still hand out its tasks: end it (on a cluster reads
    // block one slot slice at most, see slots.ts, so it ends within that).
    await this.interruptFetch();
  }

  async resume(queue: string): Promise<void> {
    if (!this.paused.delete(queue)) return;
    this.served = undefined;
    // Reads in flight leave the queue out: end them, so the next ones read it.
    await this.interruptFetch();
  }

  /** The queues' streams grouped by cluster slot (cached for the last queue list). */
  private groupsOf(queues: readonly string[]): string[][] {
    if (this.slotGroups?.queues !== queues) {
      const streams = queues.map((q) => this.stream(q));
      this.slotGroups = { queues, groups: groupBySlot(streams, (s) => s) };
    }
    return this.slotGroups.groups;
  }

  /** One XREADGROUP over streams of one slot (or of one server); `blockMs` undefined: no BLOCK. */
  private async read(
    streams: readonly string[],
    consumer: string,
    count: number,
    blockMs: number | undefined,
  ): Promise<Delivery[]> {
    const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
    const reply = (await this.blocking.xreadgroup(
      'GROUP',
      GROUP,
      consumer,
      'COUNT',
      count,
      ...(block as ['BLOCK', number]),
      'STREAMS',
      ...streams,
      ...streams.map(() => '>'),
    )) as ReadReply;
    if (!reply) return [];
    const out: Delivery[] = [];
    for (const [key, entries] of reply) {
      const queue = this.queueByStream.get(key) as string;
      // A null entry is one deleted while pending; nothing to run.
      for (const [entry, fields] of entries)
        if (fields) out.push(new StreamDelivery(queue, entry, fields, 1));
    }
    return out;
  }

  async interruptFetch(): Promise<void> {
    for (const end of [...this.idles]) end();
    if (this.blockingId !== undefined) await this.redis.client('UNBLOCK', this.blockingId);
  }

  async settle(queue: string, consumer: string, settlements: readonly Settlement[]): Promise<string[]> {
    const k = this.keys;
    const s = this.settings;
    const [, ...stale] = await scripts.run(
      this.redis,
      scripts.finish(
        {
          stream: this.stream(queue),
          events: k.events.key({ queue }),
          parked: k.parked.key({ queue }),
          delayed: k.delayed.key({ queue }),
          dead: k.dead.key({ queue }),
        },
        {
          group: GROUP,
          ttlMs: s.resultTtlMs,
          eventsMaxLen: EVENTS_MAX_LEN,
          deadMaxLen: s.deadLetterMaxLen,
          deadMinId: `${Math.max(0, Date.now() - s.deadLetterRetentionMs)}-0`,
          consumer,
          tasks: settlements,
          resultKey: (task) => k.result.key({ queue, task }),
        },
      ),
    );
    return stale;
  }

  renew(queue: string, consumer: string, entries: readonly string[]): Promise<string[]> {
    return scripts.run(
      this.redis,
      scripts.heartbeat({ stream: this.stream(queue) }, { group: GROUP, consumer, entries }),
    );
  }

  async reclaim(queue: string, consumer: string, idleMs: number, count: number): Promise<Delivery[]> {
    const taken = await scripts.run(
      this.redis,
      scripts.reclaim({ stream: this.stream(queue) }, { group: GROUP, consumer, idleMs, count }),
    );
    return taken.map(
      ([entry, fields, deliveries]) => new StreamDelivery(queue, entry, fields, Number(deliveries)),
    );
  }

  release(queue: string, consumer: string, idleMs: number, deliveries: readonly Delivery[]): Promise<number> {
    const entries = deliveries.map((d) => ({ entry: d.entry, deliveries: Math.max(0, d.deliveries - 1) }));
    return scripts.run(
      this.redis,
      scripts.release({ stream: this.stream(queue) }, { group: GROUP, consumer, idleMs, entries }),
    );
  }

  discard(): Promise<void> {
    // revoke.lua acknowledged and deleted the entry: nothing is left to let go of.
    return Promise.resolve();
  }

  handBack(queue: string, consumer: string, tasks: readonly HandBack[]): Promise<number> {
    return scripts.run(
      this.redis,
      scripts.handback(
        { stream: this.stream(queue), parked: this.keys.parked.key({ queue }) },
        { group: GROUP, consumer, tasks },
      ),
    );
  }

  async promote(queue: string, now: number, limit: number): Promise<{ moved: number; next: number }> {
    const k = this.keys;
    const [moved, next] = await scripts.run(
      this.redis,
      scripts.promote(
        { delayed: k.delayed.key({ queue }), parked: k.parked.key({ queue }), stream: this.stream(queue) },
        { now, limit },
      ),
    );
    return { moved, next };
  }

  forgetIdleConsumers(queue: string, idleMs: number, only = ''): Promise<string[]> {
    return scripts.run(
      this.redis,
      scripts.forgetConsumers({ stream: this.stream(queue) }, { group: GROUP, idleMs, only }),
    );
  }

  async close(): Promise<void> {
    this.blocking.disconnect();
    // QUIT waits for Redis; a connection that is down is simply dropped.
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => undefined);
    else this.redis.disconnect();
  }
}
