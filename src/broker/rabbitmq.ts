/**
 * The broker on RabbitMQ, seen from a worker. One channel consumes every queue the worker serves
 * with manual acks and a `basic.qos` prefetch of the worker's capacity; deliveries wait in a small
 * buffer until the fetch loop takes them. Settling a batch records results, dead letters and the
 * completion event on Redis in one script call (record_outcomes.lua), publishes retries into the
 * delay levels with confirms, and only then acks — so a crash at any point leaves the message
 * unacked, and RabbitMQ delivers it again (at least once).
 *
 * What the Redis broker does with its pending list, RabbitMQ does itself: a worker that dies (its
 * channel closes) has its unacked messages requeued at once, so `reclaim` has nothing to do and
 * `renew` only reports deliveries whose channel is gone (their acks would be refused, and another
 * worker runs them). A channel's deliveries are fenced by the channel: an outcome is recorded only
 * while the channel it came on is open.
 *
 * Canvas continuations are written to the queue's outbox by the same record_outcomes call that
 * records their members' outcomes, then published from there (./rabbitmq-outbox.ts); the promote
 * loop relays what a crashed process left in the outboxes of the worker's queues.
 *
 * Priorities: a queue's levels above 0 are queues of their own (./rabbitmq-topology.ts), consumed on
 * the same channel once the worker knows of them (at start, or from the queue's control stream);
 * the buffer hands out higher levels first, and retries, delays and hand-backs go back to the level
 * the task came from.
 *
 * Control (revoke, cancel, purge) works through each task's ticket on Redis (written by the
 * producer, src/broker/rabbitmq-publisher.ts): a fetched batch is claimed with one script call
 * (ticket_claim.lua), which leaves out what was revoked, cancelled or purged meanwhile and says
 * where the rest runs; the settle's script call checks the tickets again (a task revoked while it
 * ran is not recorded) and deletes them.
 */
import type {
  AsyncMessage,
  Channel,
  Connection,
  Publisher as RabbitPublisher,
  SyncMessage,
} from 'rabbitmq-client';
import type { RedisConnection } from '../connection/redis.js';
import { TasukiError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import * as scripts from '../scripts/catalogue.js';
import { encodeDeadLetter } from '../wire/dead-letter.js';
import { MESSAGE_FIELD } from '../wire/fields.js';
import { continuationLocalId } from '../wire/ids.js';
import { decodeMessage, encodeContinuation, messageOf } from '../wire/message.js';
import { encodeRecord, type StoredError } from '../wire/record.js';
import type { Broker, Delivery, HandBack, OutboxEntry, Settlement } from './broker.js';
import { describeRabbit, envelopeOf, openRabbit } from './rabbitmq-connection.js';
import { RabbitMqOutbox, firstCopy } from './rabbitmq-outbox.js';
import { declareTopology, putTickets } from './rabbitmq-publisher.js';
import {
  DUE_HEADER,
  ONCE_HEADER,
  deadQueueName,
  declareLevelQueue,
  levelQueueName,
  queueName,
} from './rabbitmq-topology.js';
import { MAX_PRIORITY } from '../wire/priority.js';
import { EVENTS_MAX_LEN } from './redis-streams.js';

/** What the RabbitMQ broker needs. */
export interface RabbitMqSettings {
  url: string;
  /** Results, dead letters and completion events. */
  redis: RedisConnection;
  keys: TasukiKeys;
  log: Logger;
  resultTtlMs: number;
  deadLetterMaxLen: number;
  deadLetterRetentionMs: number;
  queueType: 'quorum' | 'classic';
  /** Unacked deliveries RabbitMQ may hand this worker per queue (`basic.qos`). */
  prefetch: number;
  /** Outbox entries older than this are relayed: their writer died (the worker's `claimIdle`). */
  outboxAgeMs: number;
  /** How often each queue's outbox is looked at (the worker's `reclaimInterval`). */
  outboxIntervalMs: number;
}

/** A message held later than this past its due time is not sent round the delay levels again. */
const DUE_SLACK_MS = 20;
/** While priority levels are mixed in the buffer, every this many fetches takes the oldest first. */
const FAIR_TAKE_EVERY = 4;
/** A released message (unknown task, newer format) comes back after this long, ms. */
const RELEASE_DELAY_MS = 1000;

/** A delivery, with the channel and tag its ack needs. */
class RabbitDelivery implements Delivery {
  constructor(
    readonly queue: string,
    readonly entry: string,
    readonly fields: readonly string[],
    readonly deliveries: number,
    readonly level: number,
    readonly channel: Channel,
    readonly tag: number,
    /** Arrival order on this worker. */
    readonly seq: number,
    /** The task's id (the message id), which names its ticket and its control messages. */
    readonly controlKey: string | undefined,
  ) {}
}

/** A message's body as text (tasuki publishes text; anything else is shown as it came). */
function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return JSON.stringify(body) ?? '';
}

export class RabbitMqBroker implements Broker {
  private conn: Connection | undefined;
  private publisher: RabbitPublisher | undefined;
  private channel: Channel | undefined;
  /** Reads what RabbitMQ dead-lettered (see {@link promote}). */
  private deadChannel: Channel | undefined;
  private queues: readonly string[] = [];
  /** The tasuki queue and priority level of each RabbitMQ queue consumed. */
  private readonly byName = new Map<string, { queue: string; level: number }>();
  /** Priority levels above 0 each queue has a RabbitMQ queue for (only queues that have any). */
  private readonly levels = new Map<string, Set<number>>();
  private readonly buffer: RabbitDelivery[] = [];
  private readonly held = new Map<string, RabbitDelivery>();
  /** Fetches waiting for a delivery (the worker keeps up to two in flight). */
  private readonly waiting = new Set<() => void>();
  private seq = 0;
  private fetches = 0;
  private closing = false;
  /** Queues paused for this worker (see {@link pause}), and the consumer tags of each queue consumed. */
  private readonly paused = new Set<string>();
  private readonly consumers = new Map<string, string[]>();
  private readonly prefix: string;
  private outbox: RabbitMqOutbox | undefined;
  /** When each queue's outbox was last relayed (ms). */
  private readonly relayedAt = new Map<string, number>();

  constructor(private readonly settings: RabbitMqSettings) {
    this.prefix = settings.keys.space.prefix;
    scripts.registerScripts(settings.redis);
  }

  async prepare(queues: readonly string[]): Promise<void> {
    this.queues = queues;
    for (const q of queues) this.byName.set(queueName(this.prefix, q), { queue: q, level: 0 });
    const conn = await openRabbit(this.settings.url, 'tasuki:worker');
    this.conn = conn;
    conn.on('error', (err) => this.settings.log.warn({ err }, 'RabbitMQ connection error; reconnecting'));
    this.publisher = conn.createPublisher({ confirm: true, maxAttempts: 2 });
    this.outbox = new RabbitMqOutbox(this.settings.redis, this.settings.keys, this.publisher);
    try {
      await declareTopology(conn, this.prefix, queues, this.settings.queueType);
      await this.findLevels(conn, queues);
      await this.consume();
    } catch (err) {
      throw new TasukiError(
        'E_BROKER',
        `the worker could not consume from RabbitMQ at ${describeRabbit(this.settings.url)} ` +
          `(${(err as Error).message}). Check that it runs, the URL and the user's permissions.`,
        { cause: err },
      );
    }
  }

  /**
   * The priority levels whose queues exist (a passive declare each, on a channel of its own: a
   * missing queue closes the channel). At start only; later levels are announced on Redis.
   */
  private async findLevels(conn: Connection, queues: readonly string[]): Promise<void> {
    for (const queue of queues) {
      for (let level = 1; level <= MAX_PRIORITY; level++) {
        const ch = await conn.acquire();
        try {
          await ch.queueDeclare({ queue: levelQueueName(this.prefix, queue, level), passive: true });
          this.addLevel(queue, level);
        } catch {
          // Not declared: no task of that level yet.
        } finally {
          await ch.close().catch(() => undefined);
        }
      }
    }
  }

  /** Notes a level of a queue; false when it was known. */
  private addLevel(queue: string, level: number): boolean {
    let known = this.levels.get(queue);
    if (!known) this.levels.set(queue, (known = new Set()));
    if (known.has(level)) return false;
    known.add(level);
    this.byName.set(levelQueueName(this.prefix, queue, level), { queue, level });
    return true;
  }

  /** Opens the consuming channel; after it closes (connection lost, consumer timeout) again. */
  private async consume(): Promise<void> {
    const conn = this.conn as Connection;
    const ch = await conn.acquire();
    ch.once('close', () => {
      if (this.channel === ch) this.channel = undefined;
      // Its deliveries can no longer be acked: RabbitMQ gives them to another consumer.
      this.buffer.length = 0;
      this.wake();
      if (!this.closing) this.resubscribe();
    });
    await ch.basicQos({ prefetchCount: this.settings.prefetch });
    this.consumers.clear();
    for (const q of this.queues) {
      if (!this.paused.has(q)) await this.consumeQueue(ch, q);
    }
    this.channel = ch;
  }

  /** Consumes a queue and each of its known priority levels. */
  private async consumeQueue(ch: Channel, queue: string): Promise<void> {
    // Highest first: what RabbitMQ pushes at once on consuming comes in that order too.
    const levels = [...(this.levels.get(queue) ?? [])].sort((a, b) => b - a);
    for (const level of levels) await this.consumeLevel(ch, queue, level);
    await this.consumeLevel(ch, queue, 0);
  }

  private async consumeLevel(ch: Channel, queue: string, level: number): Promise<void> {
    const ok = await ch.basicConsume({ queue: levelQueueName(this.prefix, queue, level) }, (msg) =>
      this.arrived(ch, msg),
    );
    let tags = this.consumers.get(queue);
    if (!tags) this.consumers.set(queue, (tags = []));
    tags.push(ok.consumerTag);
  }

  /**
   * Cancels this worker's consumer on the queue (basic.cancel), so RabbitMQ pushes it nothing more,
   * and gives back what it pushed that no fetch has taken yet (nack with requeue).
   */
  async pause(queue: string): Promise<void> {
    this.paused.add(queue);
    const ch = this.channel;
    const tags = this.consumers.get(queue) ?? [];
    this.consumers.delete(queue);
    if (ch?.active) for (const tag of tags) await ch.basicCancel({ consumerTag: tag });
    for (let i = this.buffer.length - 1; i >= 0; i--) {
      const d = this.buffer[i] as RabbitDelivery;
      if (d.queue !== queue) continue;
      this.buffer.splice(i, 1);
      this.held.delete(d.entry);
      if (d.channel.active) d.channel.basicNack({ deliveryTag: d.tag, requeue: true });
    }
  }

  /**
   * Consumes the queues of new priority levels of `queue` (declared again first: idempotent, and a
   * consume of a missing queue would close the channel), unless the queue is paused (then resume
   * consumes them).
   */
  async useLevels(queue: string, levels: readonly number[]): Promise<void> {
    const added = levels.filter((l) => l > 0 && l <= MAX_PRIORITY && this.addLevel(queue, l));
    const ch = this.channel;
    if (added.length === 0 || !ch?.active || this.paused.has(queue) || !this.consumers.has(queue)) return;
    for (const level of added) {
      await declareLevelQueue(ch, this.prefix, queue, level, this.settings.queueType);
      await this.consumeLevel(ch, queue, level);
    }
  }

  /** Consumes from the queue again (see {@link pause}). */
  async resume(queue: string): Promise<void> {
    if (!this.paused.delete(queue)) return;
    const ch = this.channel;
    if (ch?.active && !this.consumers.has(queue)) await this.consumeQueue(ch, queue);
  }

  private resubscribe(): void {
    const retry = (delayMs: number): void => {
      setTimeout(() => {
        if (this.closing) return;
        this.consume().catch((err: unknown) => {
          this.settings.log.warn({ err }, 'could not consume from RabbitMQ; trying again');
          retry(Math.min(5000, delayMs * 2));
        });
      }, delayMs).unref();
    };
    retry(100);
  }

  private arrived(ch: Channel, msg: AsyncMessage): void {
    const where = this.byName.get(msg.routingKey) ?? this.byName.get(msg.routingKey.split('.').pop() ?? '');
    const queue = where?.queue;
    const level = where?.level ?? 0;
    const due = Number(msg.headers?.[DUE_HEADER] ?? 0);
    const body = bodyText(msg.body);
    // A delay longer than one pass through the levels goes round again.
    if (queue !== undefined && due > Date.now() + DUE_SLACK_MS) {
      this.redelay(ch, msg, queue, body, due, level);
      return;
    }
    const tag: unknown = msg.headers?.[ONCE_HEADER];
    if (queue !== undefined && typeof tag === 'string' && typeof msg.messageId === 'string') {
      this.once(ch, msg, queue, level, msg.messageId, tag, body);
      return;
    }
    this.hold(ch, msg, queue, level, body);
  }

  /**
   * A copy of a task published from the outbox: taken only if it is the first copy delivered (or a
   * redelivery of it); another copy of the same task (a relay after a crash) is acked and dropped.
   */
  private once(
    ch: Channel,
    msg: AsyncMessage,
    queue: string,
    level: number,
    task: string,
    tag: string,
    body: string,
  ): void {
    const s = this.settings;
    firstCopy(s.redis, s.keys, queue, task, tag, s.resultTtlMs).then(
      (first) => {
        if (!ch.active) return;
        if (first && this.paused.has(queue)) {
          // Paused while Redis was asked: back to the queue, as pause() does with the buffer.
          ch.basicNack({ deliveryTag: msg.deliveryTag, requeue: true });
          return;
        }
        if (first) {
          this.hold(ch, msg, queue, level, body);
          return;
        }
        s.log.info(
          { queue, taskId: `${task}@${queue}`, copy: tag },
          'dropped a second copy of a task from the outbox',
        );
        ch.basicAck({ deliveryTag: msg.deliveryTag });
      },
      (err: unknown) => {
        // Redis cannot say: run it (at least once), as any task.
        s.log.warn(
          { err, queue, taskId: `${task}@${queue}` },
          'could not check the copy of an outbox task; running it',
        );
        if (ch.active) this.hold(ch, msg, queue, level, body);
      },
    );
  }

  /** A delivery into the buffer, for the fetch loop. */
  private hold(ch: Channel, msg: AsyncMessage, queue: string | undefined, level: number, body: string): void {
    const count = Number(msg.headers?.['x-delivery-count'] ?? (msg.redelivered ? 1 : 0));
    const idMs = typeof msg.messageId === 'string' ? Number(msg.messageId.split('-')[0]) : NaN;
    const entry = `${Number.isSafeInteger(idMs) && idMs > 0 ? idMs : Date.now()}-${++this.seq}`;
    const d = new RabbitDelivery(
      queue ?? this.queues[0] ?? '',
      entry,
      [typeof msg.type === 'string' && msg.type ? msg.type : MESSAGE_FIELD, body],
      count + 1,
      level,
      ch,
      msg.deliveryTag,
      this.seq,
      typeof msg.messageId === 'string' && msg.messageId ? msg.messageId : undefined,
    );
    this.held.set(entry, d);
    const buffer = this.buffer;
    // Higher levels first: a delivery goes before the first one of a lower level.
    if (level === 0 || buffer.length === 0 || (buffer[buffer.length - 1] as RabbitDelivery).level >= level)
      buffer.push(d);
    else
      buffer.splice(
        buffer.findIndex((b) => b.level < level),
        0,
        d,
      );
    this.wake();
  }

  /** Ends every waiting fetch. */
  private wake(): void {
    for (const done of this.waiting) done();
  }

  private redelay(
    ch: Channel,
    msg: AsyncMessage,
    queue: string,
    body: string,
    due: number,
    level: number,
  ): void {
    const id = typeof msg.messageId === 'string' ? msg.messageId : '';
    (this.publisher as RabbitPublisher)
      .send(envelopeOf(this.prefix, queue, id, body, due, Date.now(), level), body)
      .then(
        () => ch.active && ch.basicAck({ deliveryTag: msg.deliveryTag }),
        (err: unknown) => {
          this.settings.log.warn({ err }, 'could not delay a task again; it is delivered again');
          if (ch.active) ch.basicNack({ deliveryTag: msg.deliveryTag, requeue: true });
        },
      );
  }

  async fetch(
    _queues: readonly string[],
    consumer: string,
    count: number,
    blockMs: number,
  ): Promise<Delivery[]> {
    await this.waited(blockMs);
    // Messages come in bursts (RabbitMQ pushes as acks free its prefetch): one turn of the event
    // loop lets the rest of a burst arrive, so one claim (a Redis call) covers more of them.
    if (this.buffer.length > 0 && this.buffer.length < count) await new Promise(setImmediate);
    const batch = this.take(count);
    if (batch.length === 0) return batch;
    try {
      return await this.claim(batch, consumer);
    } catch (err) {
      // Not claimed: they wait in the buffer for the next fetch (those still ours).
      this.buffer.unshift(...batch.filter((d) => this.held.get(d.entry) === d));
      throw err;
    }
  }

  /**
   * Up to `count` buffered deliveries: higher levels first (the buffer is in that order), except every
   * {@link FAIR_TAKE_EVERY}th fetch while levels are mixed, which takes the oldest ones, so a lower
   * level pushed by RabbitMQ is never left unacked behind a stream of higher ones (RabbitMQ would
   * close the channel after its consumer timeout).
   */
  private take(count: number): RabbitDelivery[] {
    const buffer = this.buffer;
    const head = buffer[0];
    const mixed = head !== undefined && head.level !== (buffer[buffer.length - 1] as RabbitDelivery).level;
    if (!mixed || ++this.fetches % FAIR_TAKE_EVERY !== 0) return buffer.splice(0, count);
    const oldest = [...buffer].sort((a, b) => a.seq - b.seq).slice(0, count);
    const taken = new Set(oldest);
    this.buffer.splice(0, buffer.length, ...buffer.filter((d) => !taken.has(d)));
    return oldest;
  }

  /** Waits up to `blockMs` for a delivery (at once when some are buffered). */
  private async waited(blockMs: number): Promise<void> {
    if (this.buffer.length === 0 && !this.closing) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, blockMs);
        this.waiting.add(done);
      });
    }
  }
  /**
   * Claims a fetched batch's tickets (one script call per queue in it) and leaves out, acked, the
   * tasks revoked, cancelled (both recorded by then) or purged before this moment.
   */
  private async claim(batch: RabbitDelivery[], worker: string): Promise<RabbitDelivery[]> {
    const first = batch[0] as RabbitDelivery;
    // Almost every batch is of one queue, and every task in it has an id (a ticket).
    if (batch.every((d) => d.queue === first.queue && d.controlKey !== undefined)) {
      const dropped = await this.claimOf(first.queue, batch, worker);
      return dropped ? batch.filter((d) => !dropped.has(d)) : batch;
    }
    const byQueue = new Map<string, RabbitDelivery[]>();
    for (const d of batch) {
      if (d.controlKey === undefined) continue; // no id, no ticket: a foreign producer's message
      const list = byQueue.get(d.queue);
      if (list) list.push(d);
      else byQueue.set(d.queue, [d]);
    }
    const dropped = new Set<RabbitDelivery>();
    for (const [queue, list] of byQueue) {
      for (const d of (await this.claimOf(queue, list, worker)) ?? []) dropped.add(d);
    }
    return dropped.size ? batch.filter((d) => !dropped.has(d)) : batch;
  }

  /** Claims one queue's deliveries; resolves those not to run (acked), if any. */
  private async claimOf(
    queue: string,
    list: readonly RabbitDelivery[],
    worker: string,
  ): Promise<Set<RabbitDelivery> | undefined> {
    const s = this.settings;
    const k = s.keys;
    const verdicts = await scripts.run(
      s.redis,
      scripts.ticketClaim(
        {
          delayed: k.delayed.key({ queue }),
          purges: k.purges.key({ queue }),
          tickets: k.tickets.key({ queue }),
        },
        { worker, ids: list.map((d) => d.controlKey as string) },
      ),
    );
    let dropped: Set<RabbitDelivery> | undefined;
    let cancelled: { d: RabbitDelivery; ticket: string }[] | undefined;
    let revoked: RabbitDelivery[] | undefined;
    verdicts.forEach((verdict, i) => {
      if (verdict === '') return;
      const d = list[i] as RabbitDelivery;
      (dropped ??= new Set()).add(d);
      if (verdict.startsWith('cancelling|')) (cancelled ??= []).push({ d, ticket: verdict });
      else {
        // Purged: dropped unrecorded. Revoked or cancelled: acked once their canvas is continued.
        if (verdict === 'purged') this.ack(d);
        else (revoked ??= []).push(d);
        s.log.info({ queue, id: d.controlKey, verdict }, `task ${verdict} before it started; not run`);
      }
    });
    if (revoked) await this.continueCanvases(queue, revoked);
    if (cancelled) await this.recordCancelled(queue, cancelled);
    return dropped;
  }

  /**
   * Revoked or cancelled before they started (their records written by the revoke), then acked.
   * A canvas member among them continues its canvas with that record, so the canvas fails naming
   * it, as revoke.lua does on Redis Streams (here when a worker meets the message: the revoke has no
   * message to read the canvas from). The continuation's id is the member's, so a second one runs
   * not at all.
   */
  private async continueCanvases(queue: string, list: readonly RabbitDelivery[]): Promise<void> {
    try {
      await this.continuationsOf(queue, list);
    } catch (err) {
      // Not run all the same (its ticket is gone: a fetch again would run it); its canvas waits.
      this.settings.log.warn(
        { err, queue },
        'could not continue the canvas of a revoked member; the canvas waits until its result() times out',
      );
    }
    for (const d of list) this.ack(d);
  }

  private async continuationsOf(queue: string, list: readonly RabbitDelivery[]): Promise<void> {
    const s = this.settings;
    const k = s.keys;
    const continuations: scripts.OutboxMessage[] = [];
    for (const d of list) {
      let canvas: string | undefined;
      try {
        canvas = decodeMessage(messageOf(d.fields)).canvas;
      } catch {
        canvas = undefined;
      }
      const id = d.controlKey as string;
      const record = canvas === undefined ? null : await s.redis.get(k.result.key({ queue, task: id }));
      if (canvas === undefined || record === null) continue;
      const cid = continuationLocalId(id);
      continuations.push({ id: cid, message: encodeContinuation(canvas, record, cid) });
    }
    if (continuations.length) {
      const [count, ...rest] = await this.recordOutcomes(queue, [], continuations);
      await this.sendOutbox(queue, outboxEntries(continuations, count, rest));
    }
  }

  /**
   * Tasks cancelled while they ran on a worker that died since: recorded cancelled (the ticket says
   * by whom and why), not run, acked.
   */
  private async recordCancelled(
    queue: string,
    list: readonly { d: RabbitDelivery; ticket: string }[],
  ): Promise<void> {
    const s = this.settings;
    const now = Date.now();
    const tasks = list.map(({ d, ticket }): scripts.RecordedOutcome => {
      // "cancelling|g|d|a|w|n|{b, x}" (see src/scripts/lua/lib/ticket.lua)
      const parts = ticket.split('|');
      let by = '';
      let error: StoredError = { name: 'CancelledError', code: 'E_CANCELLED', message: 'cancelled' };
      try {
        const rest = JSON.parse(parts.slice(6).join('|')) as { b?: string; x?: string };
        by = rest.b ?? '';
        if (rest.x) error = JSON.parse(rest.x) as StoredError;
      } catch {
        // the defaults above
      }
      const record = encodeRecord({
        state: 'cancelled',
        task: parts[5] ?? '?',
        attempt: Number(parts[3]) || 1,
        worker: parts[4] ?? '',
        startedAt: now,
        finishedAt: now,
        by,
        error,
      });
      return { id: d.controlKey as string, record, outcome: 'done', dropRecord: false };
    });
    await this.recordOutcomes(queue, tasks);
    for (const { d } of list) {
      this.ack(d);
      s.log.info(
        { queue, id: d.controlKey },
        'task cancelled while its worker died; recorded cancelled, not run',
      );
    }
  }

  /** Acks a delivery still held on its channel (once: a second ack of a tag closes the channel). */
  private ack(d: RabbitDelivery): void {
    if (this.held.get(d.entry) !== d) return;
    this.held.delete(d.entry);
    if (d.channel.active) d.channel.basicAck({ deliveryTag: d.tag });
  }

  discard(_queue: string, deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) {
      const held = this.held.get(d.entry);
      if (held) this.ack(held);
    }
    return Promise.resolve();
  }

  interruptFetch(): Promise<void> {
    this.wake();
    return Promise.resolve();
  }

  /** The held delivery of an entry, if its channel is still open (else it is no longer ours). */
  private live(entry: string): RabbitDelivery | undefined {
    const d = this.held.get(entry);
    if (!d) return undefined;
    if (d.channel.active && d.channel === this.channel) return d;
    this.held.delete(entry);
    return undefined;
  }

  async settle(queue: string, _consumer: string, settlements: readonly Settlement[]): Promise<string[]> {
    const stale: string[] = [];
    const recorded: scripts.RecordedOutcome[] = [];
    const retries: { t: Settlement; level: number }[] = [];
    const acks: RabbitDelivery[] = [];
    const continuations: scripts.OutboxMessage[] = [];
    for (const t of settlements) {
      const d = this.live(t.entry);
      if (!d) {
        stale.push(t.entry);
        continue;
      }
      acks.push(d);
      if (t.outcome === 'retry' || t.outcome === 'defer') retries.push({ t, level: d.level });
      // A canvas member's final outcome: its continuation goes to the outbox with the record.
      if (t.canvas !== undefined && (t.outcome === 'done' || t.outcome === 'dead')) {
        const id = continuationLocalId(t.id);
        continuations.push({ id, message: encodeContinuation(t.canvas, t.record, id), after: t.id });
      }
      if (t.outcome !== 'defer') {
        recorded.push({
          id: t.id,
          record: t.record,
          outcome: t.outcome,
          dropRecord: t.dropRecord,
          payload: t.outcome === 'dead' ? t.payload : undefined,
          due: t.outcome === 'retry' ? t.due : undefined,
        });
      }
    }
    if (acks.length === 0) return stale;
    let fenced: string[] = [];
    let outboxed: OutboxEntry[] = [];
    if (recorded.length) {
      const [count, ...rest] = await this.recordOutcomes(queue, recorded, continuations);
      fenced = rest.slice(0, count);
      outboxed = outboxEntries(continuations, count, rest);
    }
    if (fenced.length) {
      // Revoked or cancelled while they ran: the revoke's record stands, no retry is published, and
      // the worker discards their outcome; their messages are acked all the same.
      const out = new Set(fenced);
      for (const t of settlements) if (out.has(t.id)) stale.push(t.entry);
      for (let i = retries.length - 1; i >= 0; i--)
        if (out.has((retries[i] as { t: Settlement }).t.id)) retries.splice(i, 1);
    }
    if (retries.length || outboxed.length) {
      const now = Date.now();
      const pub = this.publisher as RabbitPublisher;
      await Promise.all([
        ...retries.map(({ t, level }) => {
          const message = t.payload as string;
          return pub.send(envelopeOf(this.prefix, queue, t.id, message, t.due ?? 0, now, level), message);
        }),
        this.sendOutbox(queue, outboxed),
      ]);
    }
    for (const d of acks) this.ack(d);
    return stale;
  }

  /** Publishes what this worker just wrote to a queue's outbox; left for the relay if that fails. */
  private async sendOutbox(queue: string, entries: readonly OutboxEntry[]): Promise<void> {
    if (entries.length === 0) return;
    try {
      await (this.outbox as RabbitMqOutbox).send(queue, entries);
    } catch (err) {
      this.settings.log.warn(
        { err, queue, tasks: entries.length },
        'could not publish canvas continuations to RabbitMQ; they stay in the outbox and are relayed after claimIdle',
      );
    }
  }

  /** Relays a queue's outbox (entries whose writer died) at most once per `outboxIntervalMs`. */
  private async relay(queue: string): Promise<void> {
    const now = Date.now();
    if (now - (this.relayedAt.get(queue) ?? 0) < this.settings.outboxIntervalMs) return;
    this.relayedAt.set(queue, now);
    const relayed = await (this.outbox as RabbitMqOutbox).relay(queue, this.settings.outboxAgeMs);
    if (relayed) {
      this.settings.log.warn(
        { queue, tasks: relayed },
        'published tasks a process left in the outbox (it died, or could not reach RabbitMQ, before publishing them)',
      );
    }
  }

  renew(_queue: string, _consumer: string, entries: readonly string[]): Promise<string[]> {
    // RabbitMQ keeps an unacked delivery for its consumer as long as the channel lives (up to the
    // broker's consumer_timeout): nothing to renew, only losses to report.
    return Promise.resolve(entries.filter((e) => this.live(e) === undefined));
  }

  reclaim(): Promise<Delivery[]> {
    // A dead consumer's unacked messages are requeued by RabbitMQ when its channel closes.
    return Promise.resolve([]);
  }

  /** Publishes a copy to come back shortly (not counted as a delivery), then acks the original. */
  async release(
    queue: string,
    _consumer: string,
    _idleMs: number,
    deliveries: readonly Delivery[],
  ): Promise<number> {
    let n = 0;
    const due = Date.now() + RELEASE_DELAY_MS;
    for (const delivery of deliveries) {
      const d = this.live(delivery.entry);
      if (!d) continue;
      const body = d.fields[1] ?? '';
      const id = /"id":"([^"]+)"/.exec(body)?.[1] ?? d.entry;
      await (this.publisher as RabbitPublisher).send(
        envelopeOf(this.prefix, queue, id, body, due, Date.now(), d.level),
        body,
      );
      this.ack(d);
      n++;
    }
    return n;
  }

  /** Publishes each message (carrying its task id) to the queue again, then acks the delivery. */
  async handBack(queue: string, _consumer: string, tasks: readonly HandBack[]): Promise<number> {
    const pub = this.publisher as RabbitPublisher;
    const live = tasks.flatMap((t) => {
      const d = this.live(t.entry);
      return d ? [{ t, d }] : [];
    });
    if (live.length === 0) return 0;
    // Queued again (before the publish: a worker may take the copy at once); a revoked one stays so.
    // Only what lookups show: without Redis the tickets say active, and the copies run all the same.
    const s = this.settings;
    await putTickets(
      s.redis,
      s.keys,
      queue,
      live.map(({ t }) => ({ id: t.id, name: '', due: 0 })),
    ).catch((err: unknown) => s.log.warn({ err }, 'could not mark handed-back tasks queued'));
    await Promise.all(
      live.map(({ t, d }) =>
        pub.send(envelopeOf(this.prefix, queue, t.id, t.message, 0, 0, d.level), t.message),
      ),
    );
    for (const { d } of live) this.ack(d);
    return live.length;
  }

  /**
   * Delays are RabbitMQ's (TTL levels): nothing to promote. What this loop does instead: relay the
   * queue's outbox (every `outboxIntervalMs`, from the first round), and move messages RabbitMQ
   * dead-lettered (over the delivery limit) into the queue's dead-letter stream on Redis, where
   * `tasuki dlq` lists and retries them.
   */
  async promote(queue: string, _now: number, limit: number): Promise<{ moved: number; next: number }> {
    const conn = this.conn;
    if (!conn || this.closing) return { moved: 0, next: -1 };
    await this.relay(queue);
    // A channel of its own, kept while it lives: each message is acked only once Redis has it (one
    // whose write failed goes back to the dead queue when the channel closes).
    if (!this.deadChannel?.active) this.deadChannel = await conn.acquire();
    const ch = this.deadChannel;
    let moved = 0;
    for (; moved < limit; moved++) {
      const msg: SyncMessage | undefined = await ch.basicGet({ queue: deadQueueName(this.prefix, queue) });
      if (!msg) break;
      try {
        await this.deadLettered(queue, msg);
      } catch (err) {
        await ch.close().catch(() => undefined);
        throw err;
      }
      ch.basicAck({ deliveryTag: msg.deliveryTag });
    }
    return { moved, next: -1 };
  }

  /** One message RabbitMQ dead-lettered, appended to the queue's dead-letter stream. */
  private async deadLettered(queue: string, msg: SyncMessage): Promise<void> {
    const body = bodyText(msg.body);
    const id = typeof msg.messageId === 'string' ? msg.messageId : `${Date.now()}-0`;
    const count = Number(msg.headers?.['x-delivery-count'] ?? 0);
    const name = /^\["([^"]*)"/.exec(body)?.[1] ?? /"t":"([^"]*)"/.exec(body)?.[1] ?? '?';
    const now = Date.now();
    const error = {
      name: 'TasukiError',
      code: 'E_LOST',
      message: `RabbitMQ dead-lettered it after ${count} deliveries without an ack (its workers died each time)`,
    };
    const letter = encodeDeadLetter({
      id,
      queue,
      task: name,
      reason: 'max-deliveries',
      error,
      attempts: count,
      failedAt: now,
      message: body,
    });
    const record = encodeRecord({
      state: 'failed',
      task: name,
      attempt: count,
      worker: '(rabbitmq)',
      startedAt: now,
      finishedAt: now,
      error,
      reason: 'max-deliveries',
    });
    // A canvas member the broker dead-lettered fails its canvas, as one a worker dead-letters does.
    let canvas: string | undefined;
    try {
      canvas = decodeMessage(body).canvas;
    } catch {
      canvas = undefined;
    }
    const cid = continuationLocalId(id);
    const continuations =
      canvas === undefined ? [] : [{ id: cid, message: encodeContinuation(canvas, record, cid) }];
    const [fencedOut, ...rest] = await this.recordOutcomes(
      queue,
      [
        {
          id,
          record,
          outcome: 'dead',
          dropRecord: false,
          payload: letter,
        },
      ],
      continuations,
    );
    await this.sendOutbox(queue, outboxEntries(continuations, fencedOut, rest));
  }

  /**
   * Records outcomes of one queue (record_outcomes.lua: results, dead letters, tickets, one
   * completion event) and writes `outbox` to the queue's outbox in the same step. Reply: how many
   * were fenced out by their tickets, their ids, then one outbox entry id per message ("" if not
   * written).
   */
  private recordOutcomes(
    queue: string,
    tasks: readonly scripts.RecordedOutcome[],
    outbox: readonly scripts.OutboxMessage[] = [],
  ): Promise<[number, ...string[]]> {
    const s = this.settings;
    const k = s.keys;
    return scripts.run(
      s.redis,
      scripts.recordOutcomes(
        {
          events: k.events.key({ queue }),
          dead: k.dead.key({ queue }),
          delayed: k.delayed.key({ queue }),
          purges: k.purges.key({ queue }),
          tickets: k.tickets.key({ queue }),
          outbox: k.outbox.key({ queue }),
        },
        {
          ttlMs: s.resultTtlMs,
          eventsMaxLen: EVENTS_MAX_LEN,
          deadMaxLen: s.deadLetterMaxLen,
          deadMinId: `${Math.max(0, Date.now() - s.deadLetterRetentionMs)}-0`,
          tasks,
          resultKey: (task) => k.result.key({ queue, task }),
          outbox,
        },
      ),
    );
  }

  forgetIdleConsumers(): Promise<string[]> {
    // RabbitMQ forgets a consumer when its channel closes.
    return Promise.resolve([]);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.wake();
    const ch = this.channel;
    this.channel = undefined;
    // Unacked deliveries go back to their queues when the channel closes.
    await ch?.close().catch(() => undefined);
    await this.deadChannel?.close().catch(() => undefined);
    await this.publisher?.close().catch(() => undefined);
    await this.conn?.close().catch(() => undefined);
    const redis = this.settings.redis;
    if (redis.status === 'ready') await redis.quit().catch(() => undefined);
    else redis.disconnect();
  }
}

/**
 * The outbox entries record_outcomes.lua wrote, from its reply after the `fenced` ids: one entry id
 * per message given, "" for one it did not write (its member fenced out).
 */
function outboxEntries(
  messages: readonly scripts.OutboxMessage[],
  fenced: number,
  reply: readonly string[],
): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  messages.forEach((m, i) => {
    const entry = reply[fenced + i];
    if (entry) out.push({ entry, id: m.id, message: m.message });
  });
  return out;
}
