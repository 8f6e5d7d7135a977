/**
 * Publishing on RabbitMQ: every task is one persistent message published with a publisher confirm,
 * so an enqueue resolves only once the broker has it (for a quorum queue: once a majority of its
 * replicas has written it). Delayed tasks go into the delay levels (./rabbitmq-topology.ts). An
 * idempotency key is claimed on Redis first (`SET NX`), and released again when the publish fails.
 * Before the publish, the task's ticket is written on Redis (one script call per enqueue or bulk),
 * so that revoke, cancel, purge and lookup know of a task RabbitMQ holds (see ticket_put.lua).
 */
import type { Connection, Publisher as RabbitPublisher } from 'rabbitmq-client';
import type { RedisConnection } from '../connection/redis.js';
import { TasukiError } from '../errors.js';
import { TICKET_STALE_MS, type TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import { CONTROL_FIELD, CONTROL_MAX_LEN } from '../wire/fields.js';
import type { Publication, Published, Publisher, WaitingTasks } from './broker.js';
import { describeRabbit, envelopeOf, openRabbit } from './rabbitmq-connection.js';
import { RabbitMqOutbox } from './rabbitmq-outbox.js';
import { declareDelays, declareLevelQueue, declareQueue, waitingQueueNames } from './rabbitmq-topology.js';

/** What the RabbitMQ publisher needs. */
export interface RabbitMqPublisherSettings {
  url: string;
  /** The app's Redis (idempotency keys). */
  redis: RedisConnection;
  keys: TasukiKeys;
  idempotencyTtlMs: number;
  /** The app's queues, declared before the first publish. */
  queues: readonly string[];
  queueType: 'quorum' | 'classic';
}

/** Declares the delay levels and the queues on one short-lived channel. */
export async function declareTopology(
  conn: Connection,
  prefix: string,
  queues: readonly string[],
  queueType: 'quorum' | 'classic',
): Promise<void> {
  const ch = await conn.acquire();
  try {
    await declareDelays(ch);
    for (const q of queues) await declareQueue(ch, prefix, q, queueType);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** Writes the tickets of tasks about to be published to one queue (one script call). */
export function putTickets(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  tasks: readonly scripts.TicketOf[],
): Promise<number> {
  return scripts.run(
    redis,
    scripts.ticketPut(
      {
        delayed: keys.delayed.key({ queue }),
        purges: keys.purges.key({ queue }),
        tickets: keys.tickets.key({ queue }),
      },
      { now: Date.now(), staleMs: TICKET_STALE_MS, tasks },
    ),
  );
}

export class RabbitMqPublisher implements Publisher {
  readonly mintsIds = false;
  /** Canvas members and beat ticks, written to a queue's outbox on Redis, are published from it. */
  readonly outbox: RabbitMqOutbox;
  readonly waiting: WaitingTasks;
  private readonly prefix: string;
  private ready: Promise<void> | undefined;
  /** Priority level queues declared (and announced) by this publisher, by `<queue>/<level>`. */
  private readonly levels = new Map<string, Promise<void>>();

  private constructor(
    private readonly settings: RabbitMqPublisherSettings,
    private readonly conn: Connection,
    private readonly confirmed: RabbitPublisher,
  ) {
    this.prefix = settings.keys.space.prefix;
    this.outbox = new RabbitMqOutbox(settings.redis, settings.keys, confirmed, () => this.declared());
    this.waiting = {
      count: (queue) => this.countWaiting(queue),
      purge: (queue) => this.purgeWaiting(queue),
    };
  }

  /** Connects, makes the confirming publisher and declares the app's queues. */
  static async open(settings: RabbitMqPublisherSettings): Promise<RabbitMqPublisher> {
    const conn = await openRabbit(settings.url, 'tasuki:producer');
    // Reconnects by itself; a publish that fails meanwhile rejects with E_BROKER.
    conn.on('error', () => undefined);
    // A publish is tried twice: once more after a connection lost before its confirm (at least once).
    const confirmed = conn.createPublisher({ confirm: true, maxAttempts: 2 });
    const publisher = new RabbitMqPublisher(settings, conn, confirmed);
    try {
      await publisher.declared();
    } catch (err) {
      await publisher.close();
      throw new TasukiError(
        'E_BROKER',
        `could not declare tasuki's queues on RabbitMQ at ${describeRabbit(settings.url)} ` +
          `(${(err as Error).message}). Check that it runs, the URL and the user's permissions.`,
        { cause: err },
      );
    }
    return publisher;
  }

  /** The topology, declared once per publisher (again after a failure). */
  private declared(): Promise<void> {
    if (!this.ready) {
      const s = this.settings;
      const ready = declareTopology(this.conn, this.prefix, s.queues, s.queueType);
      ready.catch(() => {
        if (this.ready === ready) this.ready = undefined;
      });
      this.ready = ready;
    }
    return this.ready;
  }

  /**
   * The queue of a priority level, declared on its first use by this publisher; then a `levels`
   * message on the queue's control stream (Redis) tells its workers to consume it. Declaring is
   * idempotent: many publishers may each do it once.
   */
  private levelDeclared(queue: string, level: number): Promise<void> {
    const key = `${queue}/${level}`;
    let ready = this.levels.get(key);
    if (!ready) {
      const s = this.settings;
      ready = (async () => {
        const ch = await this.conn.acquire();
        try {
          await declareLevelQueue(ch, this.prefix, queue, level, s.queueType);
        } finally {
          await ch.close().catch(() => undefined);
        }
        const message = JSON.stringify({ op: 'levels', l: level, at: Date.now() });
        await s.redis.xadd(
          s.keys.control.key({ queue }),
          'MAXLEN',
          '~',
          CONTROL_MAX_LEN,
          '*',
          CONTROL_FIELD,
          message,
        );
      })();
      ready.catch(() => this.levels.delete(key));
      this.levels.set(key, ready);
    }
    return ready;
  }

  private async send(p: Publication): Promise<void> {
    await this.declared();
    if (p.priority > 0) {
      try {
        await this.levelDeclared(p.queue, p.priority);
      } catch (err) {
        throw new TasukiError(
          'E_BROKER',
          `enqueue of task "${p.task}": could not declare the queue of priority ${p.priority} of queue ` +
            `"${p.queue}" on RabbitMQ at ${describeRabbit(this.settings.url)}, or announce it on Redis ` +
            `(${(err as Error).message}); nothing was published. Try again, or check the broker.`,
          { cause: err },
        );
      }
    }
    const id = p.localId as string;
    const envelope = envelopeOf(this.prefix, p.queue, id, p.message, p.due, Date.now(), p.priority);
    try {
      await this.confirmed.send(envelope, p.message);
    } catch (err) {
      throw new TasukiError(
        'E_BROKER',
        `enqueue of task "${p.task}": RabbitMQ at ${describeRabbit(this.settings.url)} did not confirm it ` +
          `(${(err as Error).message}); it may not have been written. Try again, or check the broker.`,
        { cause: err },
      );
    }
  }

  /** The tickets of publications that were not published after all (best effort: they expire). */
  private async dropTickets(items: readonly Publication[]): Promise<void> {
    const s = this.settings;
    await Promise.all(
      items.map((p) => s.redis.hdel(s.keys.tickets.key({ queue: p.queue }), p.localId as string)),
    ).catch(() => undefined);
  }

  /** Ticket first (so a worker that fetches the task at once finds it), then the publish. */
  async publish(p: Publication): Promise<string> {
    const s = this.settings;
    await putTickets(s.redis, s.keys, p.queue, [{ id: p.localId as string, name: p.task, due: p.due }]);
    try {
      await this.send(p);
    } catch (err) {
      await this.dropTickets([p]);
      throw err;
    }
    return p.localId as string;
  }

  async publishUnique(p: Publication): Promise<{ local: string; created: boolean }> {
    const s = this.settings;
    const key = s.keys.idempotency.key({ queue: p.queue, key: p.idempotencyKey as string });
    const local = p.localId as string;
    // SET NX GET: the earlier task's id when the key is taken, else null (and the key is ours).
    const earlier = await s.redis.set(key, local, 'PX', s.idempotencyTtlMs, 'NX', 'GET');
    if (earlier !== null) return { local: earlier, created: false };
    try {
      await this.publish(p);
    } catch (err) {
      await s.redis.del(key).catch(() => undefined);
      throw err;
    }
    return { local, created: true };
  }

  /**
   * Publishes every item (confirms in flight together) after one script call writing the tickets of
   * those without an idempotency key; rejects if any was not confirmed.
   */
  async publishMany(queue: string, items: readonly Publication[]): Promise<Published[]> {
    const s = this.settings;
    const plain = items.filter((p) => p.idempotencyKey === undefined);
    if (plain.length) {
      const tickets = plain.map((p) => ({ id: p.localId as string, name: p.task, due: p.due }));
      await putTickets(s.redis, s.keys, queue, tickets);
    }
    const settled = await Promise.allSettled(
      items.map((p): Promise<Published> =>
        p.idempotencyKey === undefined ? this.send(p).then(() => p.localId as string) : this.publishUnique(p),
      ),
    );
    const failed = settled.flatMap((r, i) =>
      r.status === 'rejected' && (items[i] as Publication).idempotencyKey === undefined
        ? [items[i] as Publication]
        : [],
    );
    if (failed.length) await this.dropTickets(failed);
    return settled.map((r) => {
      if (r.status === 'rejected') throw r.reason;
      return r.value;
    });
  }

  /** Tasks ready in the queue (and its level queues), from a passive declare of each. */
  private async countWaiting(queue: string): Promise<number> {
    await this.declared();
    let n = 0;
    for (const name of waitingQueueNames(this.prefix, queue)) {
      n +=
        (await levelOrNothing(name, () => this.conn.queueDeclare({ queue: name, passive: true })))
          ?.messageCount ?? 0;
    }
    return n;
  }

  /** Purges the queue (and its level queues); resolves how many tasks went. */
  private async purgeWaiting(queue: string): Promise<number> {
    await this.declared();
    let n = 0;
    for (const name of waitingQueueNames(this.prefix, queue)) {
      n += (await levelOrNothing(name, () => this.conn.queuePurge({ queue: name })))?.messageCount ?? 0;
    }
    return n;
  }

  /** Closes the publisher and its connection. */
  async close(): Promise<void> {
    await this.confirmed.close().catch(() => undefined);
    await this.conn.close().catch(() => undefined);
  }
}

/**
 * Runs a count or purge of one of a queue's RabbitMQ queues; a priority level's queue that does not
 * exist (no task of that level yet: RabbitMQ answers 404) has nothing, the queue's own must exist.
 */
async function levelOrNothing<T>(name: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    const level = /\/p\d+$/.test(name);
    if (level && (err as { code?: unknown }).code === 'NOT_FOUND') return undefined;
    throw err;
  }
}
