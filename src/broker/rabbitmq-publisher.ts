/**
 * Publishing on RabbitMQ: every task is one persistent message published with a publisher confirm,
 * so an enqueue resolves only once the broker has it (for a quorum queue: once a majority of its
 * replicas has written it). Delayed tasks go into the delay levels (./rabbitmq-topology.ts). An
 * idempotency key is claimed on Redis first (`SET NX`), and released again when the publish fails.
 */
import type { Connection, Publisher as RabbitPublisher } from 'rabbitmq-client';
import type { RedisConnection } from '../connection/redis.js';
import { TasukiError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { CONTROL_FIELD, CONTROL_MAX_LEN } from '../wire/fields.js';
import type { Publication, Published, Publisher } from './broker.js';
import { describeRabbit, envelopeOf, openRabbit } from './rabbitmq-connection.js';
import { RabbitMqOutbox } from './rabbitmq-outbox.js';
import { declareDelays, declareLevelQueue, declareQueue } from './rabbitmq-topology.js';

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

export class RabbitMqPublisher implements Publisher {
  readonly mintsIds = false;
  /** Canvas members and beat ticks, written to a queue's outbox on Redis, are published from it. */
  readonly outbox: RabbitMqOutbox;
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

  async publish(p: Publication): Promise<string> {
    await this.send(p);
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
      await this.send(p);
    } catch (err) {
      await s.redis.del(key).catch(() => undefined);
      throw err;
    }
    return { local, created: true };
  }

  /** Publishes every item (confirms in flight together); rejects if any was not confirmed. */
  publishMany(_queue: string, items: readonly Publication[]): Promise<Published[]> {
    return Promise.all(
      items.map((p): Promise<Published> =>
        p.idempotencyKey === undefined ? this.publish(p) : this.publishUnique(p),
      ),
    );
  }

  /** Closes the publisher and its connection. */
  async close(): Promise<void> {
    await this.confirmed.close().catch(() => undefined);
    await this.conn.close().catch(() => undefined);
  }
}
