import { Redis, type RedisOptions } from 'ioredis';
import { TasukiError } from '../errors.js';
import { isAuthFailure } from './failures.js';
import { checkRedisUrl, maskUrl } from './url.js';

/** How to reach Redis. */
export interface ConnectionOptions {
  /** `redis://` or `rediss://` URL with optional user, password and db index. */
  url: string;
  /** Attempts before giving up at start (default 5). After the first success tasuki reconnects forever. */
  startAttempts?: number;
  /** Ceiling for the backoff between attempts in ms (default 2000). */
  maxBackoffMs?: number;
  /** Name shown in `CLIENT LIST` (default `tasuki`). */
  clientName?: string;
  /** Extra ioredis options (TLS certificates, Sentinel...). */
  redisOptions?: RedisOptions;
}

/** Backoff before reconnect attempt `n` (1-based): 100 ms doubling, capped, with ±20 % jitter. */
export function backoffMs(attempt: number, capMs: number): number {
  const base = Math.min(capMs, 100 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * Opens a connection and waits until it is ready. Unreachable Redis is retried with backoff a
 * bounded number of times, then a `E_CONNECTION` error names the URL (password masked). Refused
 * credentials (WRONGPASS, NOAUTH) are not retried: `E_AUTH` at the first attempt. Once connected,
 * the client reconnects by itself with the same backoff, forever.
 */
export async function connect(options: ConnectionOptions): Promise<Redis> {
  const url = options.url;
  checkRedisUrl(url);
  const attempts = options.startAttempts ?? 5;
  const cap = options.maxBackoffMs ?? 2000;
  let ready = false;
  let lastError: Error | undefined;
  let refused: Error | undefined;

  const client = new Redis(url, {
    lazyConnect: true,
    connectionName: options.clientName ?? 'tasuki',
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    ...options.redisOptions,
    retryStrategy: (times: number) => {
      // A password does not get better by retrying.
      if (!ready && (refused !== undefined || times >= attempts)) return null;
      return backoffMs(times, cap);
    },
  });
  client.on('error', (err: Error) => {
    lastError = err;
    if (!ready && isAuthFailure(err)) refused = err;
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onEnd = (): void => {
        cleanup();
        reject(lastError ?? new Error('connection closed'));
      };
      const cleanup = (): void => {
        client.off('ready', onReady);
        client.off('end', onEnd);
      };
      client.once('ready', onReady);
      client.once('end', onEnd);
      client.connect().catch(() => {
        // Failures surface through 'error' and, once retries are spent, 'end'.
      });
    });
  } catch (err) {
    client.disconnect();
    const reason = err instanceof Error ? err.message : String(err);
    if (refused) {
      throw new TasukiError(
        'E_AUTH',
        `Redis refused the credentials in ${maskUrl(url)} (${refused.message}). ` +
          `Check the user and password in the URL (TASUKI_REDIS_URL / REDIS_URL) and the server's ACL.`,
        { cause: refused },
      );
    }
    throw new TasukiError(
      'E_CONNECTION',
      `cannot reach Redis at ${maskUrl(url)} after ${attempts} attempts (${reason}). ` +
        `Check that Redis runs there and that TASUKI_REDIS_URL / REDIS_URL is right.`,
      { cause: err },
    );
  }
  ready = true;
  return client;
}
