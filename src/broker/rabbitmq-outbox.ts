/**
 * The outbox on RabbitMQ (the {@link Outbox} contract in ./broker.ts). A Redis script that makes a
 * task in the same atomic step as another write — record_outcomes.lua a canvas member's
 * continuation, canvas_start.lua the next member, beat_tick.lua a tick's task — writes it to the
 * queue's outbox stream on Redis (`{q:<queue>}:outbox`: task id and message). The caller then
 * publishes it to RabbitMQ with a confirm and deletes the entry. A crash between the two leaves the
 * entry; workers (every `reclaimInterval`, entries older than `claimIdle`) and beats relay it.
 *
 * A relay may publish an entry its writer had published already (the crash fell between the confirm
 * and the delete). Both copies carry the task's id, and each carries a copy tag in the header
 * `x-tasuki-once` (the outbox entry id; a relay adds a random mark). The worker that receives a
 * tagged copy claims the task for that tag first (`SET {q:<queue>}:once:<task> <tag> NX GET`): the
 * first copy delivered runs (and again on a redelivery of that same copy, as any task), a later copy
 * with another tag is acked and dropped unrun. So a task from the outbox runs and is recorded once.
 */
import { randomBytes } from 'node:crypto';
import type { Publisher as RabbitPublisher } from 'rabbitmq-client';
import type { RedisConnection } from '../connection/redis.js';
import { TICKET_STALE_MS, type TasukiKeys } from '../keys/tasuki-keys.js';
import * as scripts from '../scripts/catalogue.js';
import { OUTBOX_ID_FIELD, OUTBOX_MESSAGE_FIELD, fieldValue } from '../wire/fields.js';
import { decodeMessage } from '../wire/message.js';
import type { Outbox, OutboxEntry } from './broker.js';
import { envelopeOf } from './rabbitmq-connection.js';
import { ONCE_HEADER } from './rabbitmq-topology.js';

/** Most entries one relay read takes (a relay reads again while it gets this many). */
const RELAY_BATCH = 100;

export class RabbitMqOutbox implements Outbox {
  private readonly prefix: string;

  /**
   * @param ready - resolves once the queues are declared (a producer declares them on first use).
   */
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: TasukiKeys,
    private readonly publisher: RabbitPublisher,
    private readonly ready: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.prefix = keys.space.prefix;
  }

  async send(queue: string, entries: readonly OutboxEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.ready();
    // Their tickets first, as a producer writes them before it publishes, so revoke, cancel, purge
    // and getTask find them (a relay writes none: a copy of a task may run already, and a ticket
    // written again would say queued; a task only a relay published has none and runs unrevokable).
    await scripts.run(
      this.redis,
      scripts.ticketPut(
        {
          delayed: this.keys.delayed.key({ queue }),
          purges: this.keys.purges.key({ queue }),
          tickets: this.keys.tickets.key({ queue }),
        },
        {
          now: Date.now(),
          staleMs: TICKET_STALE_MS,
          tasks: entries.map((e) => ({ id: e.id, name: taskNameOf(e.message), due: 0 })),
        },
      ),
    );
    await Promise.all(entries.map((e) => this.publish(queue, e, e.entry)));
    await this.redis.xdel(this.keys.outbox.key({ queue }), ...entries.map((e) => e.entry));
  }

  async relay(queue: string, olderThanMs: number): Promise<number> {
    const key = this.keys.outbox.key({ queue });
    // Entry ids are Redis's clock; a host clock behind it only relays later, one ahead only earlier
    // (a copy more, which runs once all the same).
    const until = String(Math.max(0, Date.now() - olderThanMs));
    let relayed = 0;
    for (;;) {
      const batch = (await this.redis.xrange(key, '-', until, 'COUNT', RELAY_BATCH)) as [string, string[]][];
      if (batch.length === 0) break;
      await this.ready();
      // One tag per relay: distinct from the writer's copy and from any other relay's.
      const mark = randomBytes(4).toString('hex');
      const entries: OutboxEntry[] = [];
      for (const [entry, fields] of batch) {
        const id = fieldValue(fields, OUTBOX_ID_FIELD);
        const message = fieldValue(fields, OUTBOX_MESSAGE_FIELD);
        // An entry without them is not one tasuki wrote: deleted with the rest, never published.
        if (id !== undefined && message !== undefined) entries.push({ entry, id, message });
      }
      await Promise.all(entries.map((e) => this.publish(queue, e, `${e.entry}:${mark}`)));
      await this.redis.xdel(key, ...batch.map(([entry]) => entry));
      relayed += entries.length;
      if (batch.length < RELAY_BATCH) break;
    }
    return relayed;
  }

  private async publish(queue: string, e: OutboxEntry, tag: string): Promise<void> {
    const envelope = envelopeOf(this.prefix, queue, e.id, e.message, 0, 0);
    await this.publisher.send({ ...envelope, headers: { [ONCE_HEADER]: tag } }, e.message);
  }
}

/**
 * Whether this delivered copy of an outbox task may run: true for the first copy delivered (and
 * for redeliveries of that copy), false for another copy of the same task. `ttlMs`: how long the
 * claim is kept (the app's result TTL).
 */
export async function firstCopy(
  redis: RedisConnection,
  keys: TasukiKeys,
  queue: string,
  task: string,
  tag: string,
  ttlMs: number,
): Promise<boolean> {
  const key = keys.outboxOnce.key({ queue, task });
  const earlier = await redis.set(key, tag, 'PX', ttlMs, 'NX', 'GET');
  return earlier === null || earlier === tag;
}

/** The task name a message carries, for its ticket ("" if it cannot be read: the worker will say why). */
function taskNameOf(message: string): string {
  try {
    return decodeMessage(message).name;
  } catch {
    return '';
  }
}
