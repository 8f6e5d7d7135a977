import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { TasukiError } from '../errors.js';
import { isAuthFailure } from './failures.js';
import type { RedisConnection } from './redis.js';
import { maskUrl, parseRedisUrl, type RedisTarget } from './url.js';

/** How to reach Redis. */
export interface ConnectionOptions {
  /**
   * `redis://` or `rediss://` URL with optional user, password and db index; `redis+cluster://`
   * (`rediss+cluster://` with TLS) and seed nodes `host:port,host:port` for Redis Cluster;
   * `redis+sentinel://host:port,host:port/<master name>` for a primary found through Sentinel.
   */
  url: string;
  /** Attempts before giving up at start (default 5). After the first success tasuki reconnects forever. */
  startAttempts?: number;
  /** Ceiling for the backoff between attempts in ms (default 2000). */
  maxBackoffMs?: number;
  /** Name shown in `CLIENT LIST` (default `tasuki`). */
  clientName?: string;
  /** Extra ioredis options (TLS certificates, Sentinel...); on a cluster, those of each node's connection. */
  redisOptions?: RedisOptions;
  /** Extra ioredis `Cluster` options (cluster URLs only). */
  clusterOptions?: ClusterOptions;
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
export async function connect(options: ConnectionOptions): Promise<RedisConnection> {
  const url = options.url;
  const target = parseRedisUrl(url);
  const attempts = options.startAttempts ?? 5;
  const cap = options.maxBackoffMs ?? 2000;
  let ready = false;
  let lastError: Error | undefined;
  let refused: Error | undefined;

  const retryStrategy = (times: number): number | null => {
    // A password does not get better by retrying.
    if (!ready && (refused !== undefined || times >= attempts)) return null;
    return backoffMs(times, cap);
  };
  const client = open(target, options, retryStrategy);
  client.on('error', (err: Error) => {
    lastError = err;
    // A cluster reports "Failed to refresh slots cache." and keeps the node's answer beside it.
    const cause = (err as { lastNodeError?: unknown }).lastNodeError ?? err;
    if (!ready && isAuthFailure(cause)) refused = cause as Error;
  });
  // A cluster's node connections say WRONGPASS / NOAUTH here.
  client.on('node error', (err: Error) => {
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

/** The ioredis client for a target, not connected yet. */
function open(
  target: RedisTarget,
  options: ConnectionOptions,
  retryStrategy: (times: number) => number | null,
): RedisConnection {
  const base: RedisOptions = {
    lazyConnect: true,
    connectionName: options.clientName ?? 'tasuki',
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
  };
  if (target.kind === 'single') {
    return new Redis(target.url, { ...base, ...options.redisOptions, retryStrategy });
  }
  const auth = {
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
  };
  const tls = target.tls ? { tls: {} } : {};
  if (target.kind === 'sentinel') {
    return new Redis({
      ...base,
      ...auth,
      ...tls,
      // Sentinels themselves usually run without the data nodes' ACL user and TLS; override in redisOptions.
      sentinels: target.sentinels,
      name: target.name,
      db: target.db,
      ...options.redisOptions,
      sentinelRetryStrategy: retryStrategy,
      retryStrategy,
    });
  }
  const { lazyConnect, ...nodeOptions } = base;
  return new Cluster(target.seeds, {
    lazyConnect,
    enableReadyCheck: true,
    maxRedirections: 64,
    // Writes and reads go to masters: a replica may lag behind what a worker just acknowledged.
    scaleReads: 'master',
    // ElastiCache with TLS: certificates name the configuration endpoint, so keep host names as
    // given instead of resolving them to IPs (which the certificate would not match).
    ...(target.tls
      ? { dnsLookup: (address: string, cb: (e: null, a: string) => void) => cb(null, address) }
      : {}),
    ...options.clusterOptions,
    redisOptions: { ...nodeOptions, ...auth, ...tls, ...options.redisOptions },
    clusterRetryStrategy: retryStrategy,
  });
}
