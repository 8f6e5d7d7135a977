import type { RedisConnection } from '../connection/redis.js';
import { tasukiKeys, type TasukiKeys } from '../keys/tasuki-keys.js';
import { Lock } from './lock.js';
import type { LockOptions } from './options.js';

/**
 * Makes locks on one connection and keyspace with shared default options; independent of an app.
 *
 * @example
 * ```ts
 * const locks = new Locks(redis, tasukiKeys('tsk'), { ttl: '30s' });
 * await locks.withLock('rebuild-index', async (lock) => rebuild({ signal: lock.signal, token: lock.token }));
 * ```
 */
export class Locks {
  /**
   * @param redis - ioredis connection the locks use.
   * @param keys - tasuki's keyspace (default `tasukiKeys()`, prefix `tsk`).
   * @param defaults - options every lock gets unless its own options say otherwise.
   */
  constructor(
    readonly redis: RedisConnection,
    readonly keys: TasukiKeys = tasukiKeys(),
    readonly defaults: LockOptions = {},
  ) {}

  /** A new, not yet acquired {@link Lock}. */
  lock(name: string, options: LockOptions = {}): Lock {
    return new Lock(this.redis, this.keys, name, { ...this.defaults, ...options });
  }

  /** Creates and acquires a lock; use with `await using` to release it at the end of the block. */
  async acquire(name: string, options: LockOptions = {}): Promise<Lock> {
    const lock = this.lock(name, options);
    await lock.acquire();
    return lock;
  }

  /** Runs `fn` while holding the lock `name` (see {@link withLock}). */
  withLock<T>(name: string, fn: (lock: Lock) => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    return withLock(this.lock(name, options), fn);
  }
}

/**
 * Acquires `lock`, runs `fn(lock)`, and releases the lock whatever happens. If `fn` throws, its error
 * is what you get (a failed release is then ignored). If `fn` succeeds but the lock was lost while it
 * ran, the {@link LockLostError} from release is thrown: the work was not continuously protected
 * (a fenced resource will have rejected stale writes). Use `lock.signal` to stop early.
 */
export async function withLock<T>(lock: Lock, fn: (lock: Lock) => Promise<T> | T): Promise<T> {
  await lock.acquire();
  let result: T;
  try {
    result = await fn(lock);
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
  await lock.release();
  return result;
}
