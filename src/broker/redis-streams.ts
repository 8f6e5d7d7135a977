/**
 * The broker on Redis Streams: one stream per queue read through the consumer group `tasuki`, one
 * Lua script per atomic operation (src/scripts/lua), every key from the keyspace registry. A queue
 * whose tasks use priority levels has one more stream per level above 0, in its slot; once the
 * worker knows of them ({@link RedisStreamsBroker.useLevels}) they are read in the same XREADGROUP,
 * highest first, and their deliveries are named by entry references (src/wire/priority.ts).
 */
import { isCluster, type RedisConnection } from '../connection/redis.js';
import { groupBySlot, readAcrossSlots } from '../connection/slots.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import { GROUP } from '../wire/fields.js';
import { entryRef, parseEntryRef, PRIORITY_LEVELS } from '../wire/priority.js';
import type { Broker, Delivery, HandBack, Settlement } from './broker.js';

/** Approximate cap of each queue's completion stream. */
export const EVENTS_MAX_LEN = 10_000;

/**
 * While a priority level has a backlog, every this many reads one read takes from every level
 * anyway, so lower levels are never starved (see {@link RedisStreamsBroker.fetch}).
 */
export const FAIR_READ_EVERY = 4;

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
    readonly level: number,
  ) {}
}

/** Where a stream read from belongs: its queue and priority level. */
interface StreamOf {
  readonly queue: string;
  readonly level: number;
}

/** True when an entry reference names an entry of a level stream (it ends in `p<digit>`). */
function onLevel(ref: string): boolean {
  return ref.charCodeAt(ref.length - 2) === 112; // 'p'
}

/**
 * Items split by the priority level of their entry reference, raw entry ids in place of references.
 * Items all on level 0 (every queue without levels) come back as they are, in one group.
 */
function byLevel<T extends { entry: string }>(items: readonly T[]): Map<number, readonly T[]> {
  if (!items.some((item) => onLevel(item.entry))) return new Map([[0, items]]);
  const out = new Map<number, T[]>();
  for (const item of items) {
    const { entry, level } = parseEntryRef(item.entry);
    let list = out.get(level);
    if (!list) out.set(level, (list = []));
    list.push(level === 0 ? item : { ...item, entry });
  }
  return out;
}

export class RedisStreamsBroker implements Broker {
  private readonly redis: RedisConnection;
  private readonly blocking: RedisConnection;
  private readonly keys: TasukiKeys;
  private blockingId: number | undefined;
  private readonly queueByStream = new Map<string, StreamOf>();
  /**
   * Priority levels above 0 each queue has streams for, highest first (only queues that have any):
   * a queue not in it is read, settled and renewed exactly as before priorities.
   */
  private readonly levels = new Map<string, number[]>();
  /** Streams to read for the last queue list (made again when it or the levels change). */
  private readList: { queues: readonly string[]; streams: string[] } | undefined;
  /**
   * Per queue, the level below which the next read leaves its streams out: that level filled the
   * last read's batch, so it has a backlog. Only queues with such a floor are in it.
   */
  private readonly floors = new Map<string, number>();
  /** Reads of queues with levels so far, for the fair turn ({@link FAIR_READ_EVERY}). */
  private levelReads = 0;
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

  /** The stream of a queue's priority level (0: the queue's stream). */
  private streamAt(queue: string, level: number): string {
    return level === 0 ? this.stream(queue) : this.keys.levelStream.key({ queue, level: String(level) });
  }

  /** The levels of a queue to read, settle and renew: its levels above 0 (highest first), then 0. */
  private levelsOf(queue: string): readonly number[] {
    const above = this.levels.get(queue);
    return above ? [...above, 0] : [0];
  }

  async useLevels(queue: string, levels: readonly number[]): Promise<void> {
    const known = this.levels.get(queue) ?? [];
    const added = levels.filter((l) => l > 0 && !known.includes(l));
    if (added.length === 0) return;
    const all = [...known, ...added].sort((a, b) => b - a);
    this.levels.set(queue, all);
    for (const level of added) this.queueByStream.set(this.streamAt(queue, level), { queue, level });
    this.readList = undefined;
    this.slotGroups = undefined;
    // Reads in flight leave the new streams out: end them, so the next ones read them.
    await this.interruptFetch();
  }

  /** The streams of `queues` to read, each queue's levels highest first (cached per list). */
  private streamsOf(queues: readonly string[]): string[] {
    if (this.floors.size > 0) {
      // A backlog on a level: this read leaves out the levels below it, of that queue.
      const streams: string[] = [];
      for (const q of queues) {
        const floor = this.floors.get(q) ?? 0;
        for (const level of this.levelsOf(q)) if (level >= floor) streams.push(this.streamAt(q, level));
      }
      return streams;
    }
    if (this.readList?.queues !== queues) {
      const streams: string[] = [];
      for (const q of queues) for (const level of this.levelsOf(q)) streams.push(this.streamAt(q, level));
      this.readList = { queues, streams };
    }
    return this.readList.streams;
  }

  async prepare(queues: readonly string[]): Promise<void> {
    // On a cluster CLIENT ID would reach any node; its reads are bounded by a slice instead.
    if (!isCluster(this.blocking)) this.blockingId = Number(await this.blocking.client('ID'));
    const streams: string[] = [];
    for (const queue of queues) {
      for (const level of this.levelsOf(queue)) {
        const key = this.streamAt(queue, level);
        this.queueByStream.set(key, { queue, level });
        streams.push(key);
      }
    }
    // Whether every stream of a queue got its group just now (see markMoves).
    const fresh = new Map<string, boolean>();
    for (const key of streams) {
      const { queue } = this.queueByStream.get(key) as { queue: string };
      let made = true;
      try {
        await this.redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
      } catch (err) {
        made = false;
        // At maxmemory Redis refuses XGROUP CREATE before it looks whether the group exists: a
        // group that exists is all a worker needs, so it can start and drain a full Redis.
        const exists = err instanceof Error && err.message.includes('BUSYGROUP');
        if (!exists && (!isOom(err) || !(await this.groupExists(key)))) throw err;
      }
      fresh.set(queue, (fresh.get(queue) ?? true) && made);
    }
    for (const [queue, made] of fresh) await this.markMoves(queue, made);
    try {
      await this.redis.sadd(this.keys.queues.key({}), ...queues);
    } catch (err) {
      // The queue list is for tools; at maxmemory it is left as it is rather than stop a worker.
      if (!isOom(err)) throw err;
    }
  }

  /**
   * Gives the queue a moves mark if it has none (lib/moved.lua; until it has one, finish reads the
   * pending list for every batch). A group just made has taken nothing from anyone: "0". A group
   * without a mark (made before marks existed, or the mark deleted or evicted) may have: the mark
   * starts at the newest entry id, so only entries newer than everything there is now skip the
   * check (a take-over meanwhile makes the mark itself; then this one is not written).
   */
  private async markMoves(queue: string, groupMade: boolean): Promise<void> {
    const moves = this.keys.moves.key({ queue });
    try {
      if (groupMade) {
        await this.redis.set(moves, '0', 'NX');
        return;
      }
      if ((await this.redis.exists(moves)) === 1) return;
      // The newest entry of any of the queue's streams (every priority level).
      let newest = 0;
      for (const level of this.levelsOf(queue)) {
        const info = (await this.redis.xinfo('STREAM', this.streamAt(queue, level))) as unknown[];
        const last = Number.parseInt(String(info[info.indexOf('last-generated-id') + 1]), 10);
        if (last > newest) newest = last;
      }
      await this.redis.set(moves, newest, 'NX');
    } catch (err) {
      // At maxmemory it stays without one (checked batches); anything else is a real failure.
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
      if (this.levels.size === 0) return await this.readAll(queues, consumer, count, blockMs);
      const floored = this.floors.size > 0;
      // With a floor the read does not block: if the levels above have run dry meanwhile, the next
      // read (which takes every level again) must not wait with lower levels' tasks left.
      const out = await this.readAll(queues, consumer, count, floored ? undefined : blockMs);
      this.nextFloors(out, count, floored);
      return out;
    } catch (err) {
      // A group deleted under us (FLUSHALL, a restart without persistence): make it again.
      if (err instanceof Error && err.message.includes('NOGROUP'))
        await this.prepare(queues).catch(() => undefined);
      throw err;
    }
  }

  /** One read over the queues: one XREADGROUP (a cluster: per slot group); `blockMs` undefined: no BLOCK. */
  private readAll(
    queues: readonly string[],
    consumer: string,
    count: number,
    blockMs: number | undefined,
  ): Promise<Delivery[]> {
    if (isCluster(this.blocking)) {
      const groups =
        this.floors.size > 0 ? groupBySlot(this.streamsOf(queues), (s) => s) : this.groupsOf(queues);
      return readAcrossSlots(groups, this.turn++, count, blockMs ?? 0, (streams, n, block) =>
        this.read(streams, consumer, n, blockMs === undefined ? undefined : block),
      );
    }
    // One server: one XREADGROUP over every queue (and its levels).
    return this.read(this.streamsOf(queues), consumer, count, blockMs);
  }

  /**
   * The starvation rule: the floors of the next read. Strict within a read (higher levels come first
   * in its reply, and the worker runs them first); a level of a queue whose stream filled this
   * read's batch has a backlog, so the next read leaves that queue's levels below it out — except
   * every {@link FAIR_READ_EVERY}th read, which takes up to a batch from every level, so a lower
   * level gets at least that share of reads while workers have room and is never starved.
   */
  private nextFloors(out: readonly Delivery[], count: number, floored: boolean): void {
    this.floors.clear();
    if (++this.levelReads % FAIR_READ_EVERY === 0 || (floored && out.length === 0)) return;
    let perLevel: Map<string, number[]> | undefined;
    for (const d of out) {
      if (d.level === 0) continue;
      perLevel ??= new Map();
      let counts = perLevel.get(d.queue);
      if (!counts) perLevel.set(d.queue, (counts = new Array<number>(PRIORITY_LEVELS).fill(0)));
      counts[d.level] = (counts[d.level] ?? 0) + 1;
    }
    for (const [queue, counts] of perLevel ?? []) {
      for (let level = counts.length - 1; level > 0; level--) {
        if ((counts[level] ?? 0) < count) continue;
        this.floors.set(queue, level);
        break;
      }
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
      const streams = [...this.streamsOf(queues)];
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
      const { queue, level } = this.queueByStream.get(key) as StreamOf;
      // A null entry is one deleted while pending; nothing to run.
      for (const [entry, fields] of entries)
        if (fields) out.push(new StreamDelivery(queue, entryRef(entry, level), fields, 1, level));
    }
    return out;
  }

  async interruptFetch(): Promise<void> {
    for (const end of [...this.idles]) end();
    if (this.blockingId !== undefined) await this.redis.client('UNBLOCK', this.blockingId);
  }

  async settle(queue: string, consumer: string, settlements: readonly Settlement[]): Promise<string[]> {
    if (!settlements.some((s) => onLevel(s.entry))) return this.settleAt(queue, 0, consumer, settlements);
    // A queue with levels: one finish call per level present (each on its level's stream).
    const stale: string[] = [];
    for (const [level, some] of byLevel(settlements)) {
      for (const entry of await this.settleAt(queue, level, consumer, some))
        stale.push(entryRef(entry, level));
    }
    return stale;
  }

  private async settleAt(
    queue: string,
    level: number,
    consumer: string,
    settlements: readonly Settlement[],
  ): Promise<string[]> {
    const k = this.keys;
    const s = this.settings;
    const [, ...stale] = await scripts.run(
      this.redis,
      scripts.finish(
        {
          stream: this.streamAt(queue, level),
          events: k.events.key({ queue }),
          parked: k.parked.key({ queue }),
          delayed: k.delayed.key({ queue }),
          dead: k.dead.key({ queue }),
          moves: k.moves.key({ queue }),
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

  async renew(queue: string, consumer: string, entries: readonly string[]): Promise<string[]> {
    const renewAt = (level: number, some: readonly string[]): Promise<string[]> =>
      scripts.run(
        this.redis,
        scripts.heartbeat({ stream: this.streamAt(queue, level) }, { group: GROUP, consumer, entries: some }),
      );
    // The heartbeat thread's broker knows no levels: the references say where each entry is.
    if (!entries.some(onLevel)) return renewAt(0, entries);
    const lost: string[] = [];
    const split = byLevel(entries.map((entry) => ({ entry })));
    for (const [level, some] of split) {
      for (const entry of await renewAt(
        level,
        some.map((e) => e.entry),
      ))
        lost.push(entryRef(entry, level));
    }
    return lost;
  }

  async reclaim(queue: string, consumer: string, idleMs: number, count: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    // Higher levels first, up to `count` in all.
    for (const level of this.levelsOf(queue)) {
      if (out.length >= count) break;
      const taken = await scripts.run(
        this.redis,
        scripts.reclaim(
          { stream: this.streamAt(queue, level), moves: this.keys.moves.key({ queue }) },
          { group: GROUP, consumer, idleMs, count: count - out.length },
        ),
      );
      for (const [entry, fields, deliveries] of taken)
        out.push(new StreamDelivery(queue, entryRef(entry, level), fields, Number(deliveries), level));
    }
    return out;
  }

  async release(
    queue: string,
    consumer: string,
    idleMs: number,
    deliveries: readonly Delivery[],
  ): Promise<number> {
    let released = 0;
    for (const [level, some] of byLevel(deliveries)) {
      const entries = some.map((d) => ({ entry: d.entry, deliveries: Math.max(0, d.deliveries - 1) }));
      released += await scripts.run(
        this.redis,
        scripts.release({ stream: this.streamAt(queue, level) }, { group: GROUP, consumer, idleMs, entries }),
      );
    }
    return released;
  }

  discard(): Promise<void> {
    // revoke.lua acknowledged and deleted the entry: nothing is left to let go of.
    return Promise.resolve();
  }

  async handBack(queue: string, consumer: string, tasks: readonly HandBack[]): Promise<number> {
    let back = 0;
    // Each back on the stream it came from: its level's.
    for (const [level, some] of byLevel(tasks)) {
      back += await scripts.run(
        this.redis,
        scripts.handback(
          { stream: this.streamAt(queue, level), parked: this.keys.parked.key({ queue }) },
          { group: GROUP, consumer, level, tasks: some },
        ),
      );
    }
    return back;
  }

  async promote(queue: string, now: number, limit: number): Promise<{ moved: number; next: number }> {
    const k = this.keys;
    const [moved, next] = await scripts.run(
      this.redis,
      scripts.promote(
        {
          delayed: k.delayed.key({ queue }),
          parked: k.parked.key({ queue }),
          streams: queueStreams(k, queue),
          control: k.control.key({ queue }),
        },
        { now, limit },
      ),
    );
    return { moved, next };
  }

  async forgetIdleConsumers(queue: string, idleMs: number, only = ''): Promise<string[]> {
    const forgotten = new Set<string>();
    for (const level of this.levelsOf(queue)) {
      const names = await scripts.run(
        this.redis,
        scripts.forgetConsumers({ stream: this.streamAt(queue, level) }, { group: GROUP, idleMs, only }),
      );
      for (const name of names) forgotten.add(name);
    }
    return [...forgotten];
  }

  async close(): Promise<void> {
    this.blocking.disconnect();
    // QUIT waits for Redis; a connection that is down is simply dropped.
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => undefined);
    else this.redis.disconnect();
  }
}
