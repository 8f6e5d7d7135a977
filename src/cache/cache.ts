/**
 * A cache facade in the style of Django's (`cache.get/set/delete/get_or_set/lock`), since that is
 * how the source app used Redis — but every value goes through an app keyspace: an owner, a TTL on
 * every write, an envelope with writer and write time, and stampede-safe `getOrSet`.
 */
import type { Keyspace } from '../keys/registry.js';
import { defineKeyspace } from '../keyspaces/define.js';
import type { AppKeyspace, KeyspaceHost } from '../keyspaces/keyspace.js';
import type { CodecName } from '../keyspaces/codec.js';
import type { StandardSchemaV1 } from '../task/schema.js';
import type { Lock } from '../lock/lock.js';
import type { LockOptions } from '../lock/options.js';
import type { Rate } from '../limits/rate.js';
import type { Duration } from '../util/duration.js';
import { MAX_THROTTLE_WINDOW_MS, Throttle } from './throttle.js';
import type { KeyDef } from '../keys/registry.js';

/** Options of {@link createCache}. */
export interface CacheOptions {
  /** Who owns the cache's keys (e.g. `web`). */
  owner: string;
  /** Name of the cache (default `cache`): keys are `<prefix>:v1:<name>:<key>`. */
  name?: string;
  /** TTL of a write that gives none (default 5 minutes; Django's default `TIMEOUT` is 300 s). */
  ttl?: Duration;
  /** `json` (default) or `msgpack`. */
  codec?: CodecName;
  /** Memory budget per key in bytes (default 64 KiB). */
  maxBytes?: number;
}

/** Any value: the facade, like Django's cache, does not check shapes (typed keyspaces do). */
const anyValue: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'tasuki', validate: (value) => ({ value }) },
};

/** The cache facade: see {@link createCache}. */
export class Cache {
  private readonly values: AppKeyspace<unknown>;
  private readonly throttleDef: KeyDef<string>;

  /** @internal Made by {@link createCache}. */
  constructor(
    private readonly app: KeyspaceHost & { readonly keyspace: Keyspace },
    options: CacheOptions,
  ) {
    const name = options.name ?? 'cache';
    this.values = defineKeyspace(app, {
      owner: options.owner,
      name,
      version: 1,
      ttl: options.ttl ?? '5m',
      codec: options.codec ?? 'json',
      schema: anyValue,
      ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
      purpose: `Cache "${name}" (the Django-style facade): any value, with a TTL on every write.`,
    });
    this.throttleDef = app.keyspace.define({
      id: `${name}.throttle`,
      pattern: `${name}.throttle:<scope>:<client>`,
      owner: options.owner,
      version: 1,
      type: 'string',
      ttlMs: MAX_THROTTLE_WINDOW_MS,
      codec: 'integer: hits in the current window',
      maxBytes: 128,
      purpose: 'Hits of one client in the current window of a throttle; its TTL is the window (up to 1 day).',
    });
  }

  /** The value at `key`, or `undefined` (Django: `cache.get(key)`). */
  get<T = unknown>(key: string): Promise<T | undefined> {
    return this.values.get(key) as Promise<T | undefined>;
  }

  /** Values of many keys in one round trip (Django: `get_many`, as a list). */
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return this.values.mget(keys) as Promise<(T | undefined)[]>;
  }

  /** Writes `value` with `ttl`, else the cache's TTL (Django: `cache.set(key, value, timeout)`). */
  set(key: string, value: unknown, ttl?: Duration): Promise<void> {
    return this.values.set(key, value, ttl === undefined ? undefined : { ttl });
  }

  /** Deletes `key`; true when it existed. */
  delete(key: string): Promise<boolean> {
    return this.values.delete(key);
  }

  /**
   * The value at `key`, or `compute()`'s, written with `ttl` (Django: `get_or_set`) — computed once
   * across processes when many miss at once.
   */
  getOrSet<T>(key: string, compute: () => T | Promise<T>, ttl?: Duration): Promise<T> {
    return this.values.getOrSet(key, compute, ttl === undefined ? undefined : { ttl }) as Promise<T>;
  }

  /**
   * A fenced lock (Django: `with cache.lock("somekey")`), not yet acquired: `await lock.acquire()`,
   * or `await using l = await cache.lock(name).acquire()`. Its `token` rejects stale writers.
   */
  async lock(name: string, options: LockOptions = {}): Promise<Lock> {
    return (await this.app.locks()).lock(name, options);
  }

  /** A throttle: at most `rate` (`"100/m"`) hits per client, counted in a TTL'd integer per client. */
  throttle(scope: string, rate: Rate): Throttle {
    return new Throttle(() => this.app.redis(), this.throttleDef, scope, rate);
  }

  /** The keyspace behind the facade (its key names, its declaration). */
  get keyspace(): AppKeyspace<unknown> {
    return this.values;
  }
}

/**
 * A Django-style cache on the app's Redis, declared in its key registry like any keyspace.
 *
 * @example
 * ```ts
 * const cache = createCache(app, { owner: 'web', ttl: '5m' });
 * const page = await cache.getOrSet(`page:${path}`, () => render(path));
 * const { allowed } = await cache.throttle('api', '100/m').hit(clientIp);
 * ```
 */
export function createCache(
  app: KeyspaceHost & { readonly keyspace: Keyspace },
  options: CacheOptions,
): Cache {
  return new Cache(app, options);
}
