/**
 * What tasuki declares on RabbitMQ, and how a message finds its way through it.
 *
 * - One durable queue per tasuki queue, `tasuki/<prefix>/<queue>` (quorum by default), with a
 *   delivery limit and the dead-letter exchange `tasuki.dead`: a message RabbitMQ gave out more
 *   than {@link DELIVERY_LIMIT} times without an ack (a task that kills its worker every time) is
 *   dead-lettered by the broker into `tasuki/<prefix>/<queue>/dead`, and workers move it from there
 *   into the queue's dead-letter stream on Redis, where `tasuki dlq` sees it.
 * - Delays without a plugin, as Celery 5.5 does it: {@link DELAY_LEVELS} quorum queues
 *   `tasuki.delay.<k>`, each with a message TTL of 2^k ms and dead-lettering (at-least-once) to the
 *   next level's exchange; level 0 dead-letters to `tasuki.deliver`. A delayed message's routing key
 *   spells its delay in binary, one word per level, most significant first, then the queue's name:
 *   the topic exchange of level k sends it into its TTL queue when bit k is 1 and on to level k-1
 *   when it is 0, and `tasuki.deliver` routes it to its task queue by the last word. Messages in one
 *   TTL queue all have the same TTL, so the oldest is always the first to expire (a TTL queue never
 *   holds an expired message behind a live one). The delay infrastructure is shared by every app on
 *   the virtual host.
 * - Priorities (quorum queues have none on RabbitMQ 3.10): one more queue per priority level above 0,
 *   `tasuki/<prefix>/<queue>/p<n>`, declared by the first publish at that level (and announced to
 *   the queue's workers through its control stream on Redis), dead-lettering into the queue's own
 *   dead queue. Workers consume the levels they know of on the same channel and hand out higher
 *   levels first.
 */
import type { Channel } from 'rabbitmq-client';
import { MAX_PRIORITY } from '../wire/priority.js';

/** Levels of delay queues: the longest single hop is 2^28 - 1 ms (about 3.1 days). */
export const DELAY_LEVELS = 28;
/** Longest delay one pass through the levels gives; longer ones take another pass on arrival. */
export const MAX_HOP_MS = 2 ** DELAY_LEVELS - 1;
/** Deliveries of one message before RabbitMQ itself dead-letters it (quorum queues only). */
export const DELIVERY_LIMIT = 50;

export const DELIVER_EXCHANGE = 'tasuki.deliver';
export const DEAD_EXCHANGE = 'tasuki.dead';
/** AMQP header carrying a delayed message's due time (ms since the epoch). */
export const DUE_HEADER = 'x-tasuki-due';
/**
 * AMQP header carrying the copy tag of a task published from the outbox (its outbox entry id, and a
 * relay's mark): the first copy delivered runs, another copy of the task is dropped (see
 * ./rabbitmq-outbox.ts).
 */
export const ONCE_HEADER = 'x-tasuki-once';

/** The RabbitMQ queue of a tasuki queue. Never contains a '.' outside the queue's own name. */
export function queueName(prefix: string, queue: string): string {
  return `tasuki/${prefix}/${queue}`;
}

/** The RabbitMQ queue of a tasuki queue's priority level (0: the queue's own). */
export function levelQueueName(prefix: string, queue: string, level: number): string {
  return level === 0 ? queueName(prefix, queue) : `${queueName(prefix, queue)}/p${level}`;
}

/**
 * Every RabbitMQ queue a tasuki queue's waiting tasks sit in (counted and purged together): its
 * queue, then the queue of each priority level (which exist only once a task of that level was
 * published: callers skip a missing one).
 */
export function waitingQueueNames(prefix: string, queue: string): string[] {
  return Array.from({ length: MAX_PRIORITY + 1 }, (_, level) => levelQueueName(prefix, queue, level));
}

/** Where RabbitMQ dead-letters a queue's messages (over the delivery limit). */
export function deadQueueName(prefix: string, queue: string): string {
  return `${queueName(prefix, queue)}/dead`;
}

function delayName(level: number): string {
  return `tasuki.delay.${level}`;
}

/** The exchange a message delayed by `ms` (1 ≤ ms ≤ {@link MAX_HOP_MS}) is published to, and its routing key. */
export function delayRoute(ms: number, queue: string): { exchange: string; routingKey: string } {
  const delay = Math.max(1, Math.min(MAX_HOP_MS, Math.round(ms)));
  const bits = delay.toString(2).padStart(DELAY_LEVELS, '0');
  // Publish at the highest level with a 1: the levels above would only pass it on.
  const top = DELAY_LEVELS - 1 - bits.indexOf('1');
  return { exchange: delayName(top), routingKey: `${bits.split('').join('.')}.${queue}` };
}

/** Topic pattern that matches bit `level` being `bit` in a delay routing key. */
function bitPattern(level: number, bit: '0' | '1'): string {
  return `${'*.'.repeat(DELAY_LEVELS - 1 - level)}${bit}.#`;
}

/** Declares the shared delay levels and exchanges (idempotent; done once per connection). */
export async function declareDelays(ch: Channel): Promise<void> {
  await ch.exchangeDeclare({ exchange: DELIVER_EXCHANGE, type: 'topic', durable: true });
  await ch.exchangeDeclare({ exchange: DEAD_EXCHANGE, type: 'direct', durable: true });
  for (let level = DELAY_LEVELS - 1; level >= 0; level--) {
    const name = delayName(level);
    const next = level === 0 ? DELIVER_EXCHANGE : delayName(level - 1);
    await ch.exchangeDeclare({ exchange: name, type: 'topic', durable: true });
    await ch.queueDeclare({
      queue: name,
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': 2 ** level,
        'x-dead-letter-exchange': next,
        // Quorum queues (3.10+) dead-letter at least once: an expired message leaves its level
        // only once the next one has it (which needs reject-publish overflow).
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
    await ch.queueBind({ queue: name, exchange: name, routingKey: bitPattern(level, '1') });
  }
  for (let level = DELAY_LEVELS - 1; level >= 0; level--) {
    const next = level === 0 ? DELIVER_EXCHANGE : delayName(level - 1);
    await ch.exchangeBind({
      destination: next,
      source: delayName(level),
      routingKey: bitPattern(level, '0'),
    });
  }
}

/** Declares one app queue, its dead-letter queue and their bindings (idempotent). */
export async function declareQueue(
  ch: Channel,
  prefix: string,
  queue: string,
  queueType: 'quorum' | 'classic',
): Promise<void> {
  const name = queueName(prefix, queue);
  const dead = deadQueueName(prefix, queue);
  const typed = queueType === 'quorum' ? { 'x-queue-type': 'quorum' as const } : {};
  await declareTaskQueue(ch, name, name, queueType);
  await ch.queueDeclare({ queue: dead, durable: true, arguments: typed });
  await ch.queueBind({ queue: dead, exchange: DEAD_EXCHANGE, routingKey: name });
}

/**
 * Declares the queue of one priority level above 0 of an app queue (idempotent): like the queue
 * itself, dead-lettering into the queue's own dead queue (its routing key is the queue's name).
 */
export async function declareLevelQueue(
  ch: Channel,
  prefix: string,
  queue: string,
  level: number,
  queueType: 'quorum' | 'classic',
): Promise<void> {
  await declareTaskQueue(ch, levelQueueName(prefix, queue, level), queueName(prefix, queue), queueType);
}

/** A queue tasks wait in, reached by delayed messages through `tasuki.deliver` by its name. */
async function declareTaskQueue(
  ch: Channel,
  name: string,
  deadRoute: string,
  queueType: 'quorum' | 'classic',
): Promise<void> {
  const typed = queueType === 'quorum' ? { 'x-queue-type': 'quorum' as const } : {};
  await ch.queueDeclare({
    queue: name,
    durable: true,
    arguments: {
      ...typed,
      'x-dead-letter-exchange': DEAD_EXCHANGE,
      'x-dead-letter-routing-key': deadRoute,
      ...(queueType === 'quorum' ? { 'x-delivery-limit': DELIVERY_LIMIT } : {}),
    },
  });
  await ch.queueBind({ queue: name, exchange: DELIVER_EXCHANGE, routingKey: `#.${name}` });
}
