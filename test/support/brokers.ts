import { after, before } from 'node:test';
import type { AppOptions, Tasuki } from '../../src/index.js';
import { TestRabbitMq, type TestRabbitMqOptions, type TestRedis } from '../../src/testing/index.js';
import { newApp, useRedis } from './redis.js';

/** A broker the conformance suite runs against. */
export type BrokerKind = 'redis' | 'rabbitmq';

/** What a conformance test file uses: Redis (always: results, locks, keys) and its broker. */
export interface BrokerUnderTest {
  readonly kind: BrokerKind;
  /** The Redis of this file. */
  redis(): TestRedis;
  /** The RabbitMQ node (throws on Redis Streams). */
  rabbit(): TestRabbitMq;
  /** The app option `broker` (undefined on Redis Streams). */
  brokerUrl(): string | undefined;
  /** Environment of a `tasuki` child process on this broker. */
  env(): Record<string, string>;
  /** A silent app on this broker with a random prefix (closed after the file's tests). */
  app(options?: AppOptions): Tasuki;
  /**
   * Stops the broker (SIGTERM, or SIGKILL with `kill`) and starts it again on the same port with its
   * data: Redis with AOF (appendfsync always), or the RabbitMQ node.
   */
  restart(opts?: { kill?: boolean }): Promise<void>;
}

/**
 * Starts the servers of one conformance file: a redis-server (with AOF, so a Redis broker survives a
 * restart) and, for `rabbitmq`, one throw-away RabbitMQ node for the whole file.
 */
export function useBroker(kind: BrokerKind, rabbitOptions: TestRabbitMqOptions = {}): BrokerUnderTest {
  const redis = useRedis({ appendonly: true });
  let rabbit: TestRabbitMq | undefined;
  if (kind === 'rabbitmq') {
    before(async () => {
      rabbit = await TestRabbitMq.start(rabbitOptions);
    });
    after(async () => {
      await rabbit?.close();
    });
  }
  const url = (): string | undefined => {
    if (kind === 'redis') return undefined;
    if (!rabbit) throw new Error('useBroker(): RabbitMQ is not started yet');
    return rabbit.url;
  };
  return {
    kind,
    redis,
    rabbit: () => {
      if (!rabbit) throw new Error('useBroker(): no RabbitMQ node (Redis Streams, or not started yet)');
      return rabbit;
    },
    brokerUrl: url,
    env: (): Record<string, string> => {
      const u = url();
      return u === undefined ? {} : { TASUKI_BROKER_URL: u };
    },
    app: (options = {}) => {
      const u = url();
      return newApp(redis(), { ...(u === undefined ? {} : { broker: u }), ...options });
    },
    restart: async (opts = {}) => {
      if (kind === 'redis') await redis().restart(opts);
      else await rabbit?.restart(opts);
    },
  };
}
