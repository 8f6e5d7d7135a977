/**
 * A connection to RabbitMQ through `rabbitmq-client` (an optional peer dependency, loaded on first
 * use): it reconnects by itself with backoff, and channels acquired from it wait for the
 * connection. Also what producers and workers share: the message properties of a task.
 */
import type { Connection, Envelope } from 'rabbitmq-client';
import { maskUrl } from '../connection/url.js';
import { TasukiError } from '../errors.js';
import { CLAIM_MESSAGE_FIELD, MESSAGE_FIELD } from '../wire/fields.js';
import { DUE_HEADER, delayRoute, levelQueueName } from './rabbitmq-topology.js';

type ConnectionClass = typeof import('rabbitmq-client').Connection;

let loaded: Promise<ConnectionClass> | undefined;

/** The `rabbitmq-client` connection class, or `E_CONFIG` saying how to install it. */
export function loadRabbitClient(): Promise<ConnectionClass> {
  const loading = (loaded ??= import('rabbitmq-client').then(
    (m) => m.Connection,
    (err: unknown) => {
      loaded = undefined;
      const code = (err as { code?: unknown }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
        throw new TasukiError(
          'E_CONFIG',
          "the RabbitMQ broker needs the 'rabbitmq-client' package (5.x), an optional peer dependency of " +
            "tasuki that is not installed. Install it with 'npm install rabbitmq-client', or use the " +
            'Redis broker (leave the app option `broker` unset).',
          { cause: err },
        );
      }
      throw err;
    },
  ));
  return loading;
}

/** Opens a connection (it connects in the background and reconnects by itself). */
export async function openRabbit(url: string, name: string): Promise<Connection> {
  const Connection = await loadRabbitClient();
  const conn = new Connection({
    url,
    connectionName: name,
    // Retries at 0.1 s, doubling to 5 s: a broker restart is noticed within seconds.
    retryLow: 100,
    retryHigh: 5000,
    // Channels wait this long for a connection before a call fails (an enqueue must not hang).
    acquireTimeout: 10_000,
  });
  return conn;
}

/** Where a RabbitMQ URL points, credentials masked, for logs and errors. */
export function describeRabbit(url: string): string {
  return maskUrl(url);
}

/** The field (format) of an encoded message, from its first byte: `{` is a claim check. */
export function fieldOf(message: string): string {
  return message.charCodeAt(0) === 123 ? CLAIM_MESSAGE_FIELD : MESSAGE_FIELD;
}

/**
 * Where and how a task's message is published: straight to its queue (default exchange) when due
 * now, else into the delay levels with its due time in a header. Persistent (delivery mode 2), the
 * local id as message id, the message's format as its type. A task of a priority level above 0 goes
 * to (or through the delays to) its level's queue.
 */
export function envelopeOf(
  prefix: string,
  queue: string,
  id: string,
  message: string,
  due: number,
  now: number,
  level = 0,
): Envelope {
  const target = levelQueueName(prefix, queue, level);
  const base: Envelope = {
    durable: true,
    messageId: id,
    type: fieldOf(message),
  };
  if (due > now) {
    const { exchange, routingKey } = delayRoute(due - now, target);
    return { ...base, exchange, routingKey, headers: { [DUE_HEADER]: due } };
  }
  return { ...base, exchange: '', routingKey: target };
}
