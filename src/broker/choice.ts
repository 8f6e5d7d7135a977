/**
 * Which broker an app uses — its `broker` option, else `TASUKI_BROKER_URL`, else Redis Streams —
 * and opening its producer side. Workers open their side in src/worker/parts.ts.
 */
import type { RedisConnection } from '../connection/redis.js';
import { maskUrl } from '../connection/url.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { BrokerKind, Publisher } from './broker.js';
import { RedisStreamsPublisher } from './redis-publisher.js';

/** An app's broker, resolved from its options. */
export interface BrokerChoice {
  readonly kind: BrokerKind;
  /** RabbitMQ: its URL. */
  readonly url?: string | undefined;
  /** RabbitMQ: the type of the queues tasuki declares. */
  readonly queueType: 'quorum' | 'classic';
}

/** The broker an app option (already validated) names; `TASUKI_BROKER_URL` when it names none. */
export function chooseBroker(option: string | undefined, queueType: 'quorum' | 'classic'): BrokerChoice {
  const url = option ?? (process.env.TASUKI_BROKER_URL || undefined);
  if (url === undefined || url === 'redis') return { kind: 'redis', queueType };
  if (!/^amqps?:\/\/./.test(url)) {
    // Only the environment variable can get here: the option is validated with the others.
    throw new Error(
      `TASUKI_BROKER_URL ${JSON.stringify(maskUrl(url))} is not "redis" or an amqp:// or amqps:// URL`,
    );
  }
  return { kind: 'rabbitmq', url, queueType };
}

/** Where an app's tasks travel, password masked, for logs. */
export function describeBroker(choice: BrokerChoice): string {
  return choice.kind === 'redis' ? 'Redis Streams' : `RabbitMQ at ${maskUrl(choice.url as string)}`;
}

/** What the producer side needs from the app. */
export interface PublisherContext {
  redis: RedisConnection;
  keys: TasukiKeys;
  queues: readonly string[];
  idempotencyTtlMs: number;
  replicas: { count: number; timeoutMs: number } | undefined;
}

/** A publisher that may hold connections of its own. */
export type OpenPublisher = Publisher & { close?(): Promise<void> };

/** Opens the app's publisher: over its Redis connection, or a RabbitMQ connection of its own. */
export async function openPublisher(choice: BrokerChoice, c: PublisherContext): Promise<OpenPublisher> {
  if (choice.kind === 'redis') {
    return new RedisStreamsPublisher({
      redis: c.redis,
      keys: c.keys,
      idempotencyTtlMs: c.idempotencyTtlMs,
      replicas: c.replicas,
    });
  }
  // Loaded only on RabbitMQ, so that an app on Redis never loads the RabbitMQ client (an optional
  // peer dependency), nor do its type declarations name it.
  const { RabbitMqPublisher } = await import('./rabbitmq-publisher.js');
  return RabbitMqPublisher.open({
    url: choice.url as string,
    redis: c.redis,
    keys: c.keys,
    idempotencyTtlMs: c.idempotencyTtlMs,
    queues: c.queues,
    queueType: choice.queueType,
  });
}
