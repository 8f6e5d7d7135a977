import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { waitForReplicas, type RedisConnection } from '../connection/redis.js';
import { OptionsError, TasukiError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { lockAcquire, lockExtend, lockRelease, registerScripts, run } from '../scripts/catalogue.js';
import type { Duration } from '../util/duration.js';
import { quote } from '../util/options.js';
import { LockLostError, LockReplicationError, LockTimeoutError } from './errors.js';
import { lockEvents } from './lock-events.js';
import {
  resolveExtendMs,
  resolveLockOptions,
  type LockOptions,
  type ResolvedLockOptions,
} from './options.js';
import { TIMED_OUT, driftMs, isOom, jitter, sleep, within } from './timing.js';

/** One acquisition: private to the Lock object that made it. */
interface Held {
  readonly owner: string;
  readonly token: bigint;
  /** End of validity on the monotonic clock (performance.now()). */
  validUntil: number;
  readonly controller: AbortController;
  expiryTimer: NodeJS.Timeout | undefined;
  renewTimer: NodeJS.Timeout | undefined;
  lost: LockLostError | undefined;
}

/**
 * A fenced distributed lock on Redis, in the spirit of redis-py's `Lock`.
 *
 * Each successful {@link acquire} creates a random owner token kept inside this object (so a holder
 * whose lock expired can neither release nor extend the next holder's lock) and returns a fencing
 * token: a `bigint` strictly greater than every token issued before for this lock name. Pass the
 * token to a fenced resource ({@link fencedUpsert}, {@link fencedSet}) so writes from a holder that
 * paused past its TTL are rejected. See docs/locks.md.
 *
 * @example
 * ```ts
 * await using lock = await locks.acquire('nightly-report', { ttl: '30s', autoRenew: true });
 * await fencedUpsert(pool, { table: 'reports', key: { id: 1 }, values: { body }, token: lock.token });
 * ```
 */
export class Lock implements AsyncDisposable {
  /** Name of the lock (any string; long or unusual names are hashed into the key). */
  readonly name: string;
  /** Validated options with defaults applied. */
  readonly options: Readonly<ResolvedLockOptions>;
  readonly #redis: RedisConnection;
  readonly #key: string;
  readonly #fenceKey: string;
  #held: Held | undefined;
  #acquiring = false;

  /**
   * @param redis - an ioredis connection (see `connect()`); the lock's scripts are registered on it.
   * @param keys - tasuki's keyspace (`tasukiKeys(prefix)`); the lock key and its fence counter come from it.
   * @param name - the lock's name.
   * @param options - see {@link LockOptions}; invalid options throw an `OptionsError`.
   */
  constructor(redis: RedisConnection, keys: TasukiKeys, name: string, options: LockOptions = {}) {
    this.options = Object.freeze(resolveLockOptions(name, options));
    this.name = name;
    this.#redis = redis;
    this.#key = keys.lock.key({ name });
    this.#fenceKey = keys.lockFence.key({ name });
    registerScripts(redis);
  }

  /** Fencing token of the current acquisition; throws `E_LOCK_STATE` when not acquired. */
  get token(): bigint {
    return this.#current('token').token;
  }

  /**
   * Aborts the moment this acquisition is lost (reason: a {@link LockLostError}): its validity ended
   * without an extend, auto-renew found it gone, or renewals failed until it ran out. Also aborts
   * (with an `AbortError`) on release. Pass it to the work done under the lock.
   */
  get signal(): AbortSignal {
    return this.#current('signal').controller.signal;
  }

  /** True from a successful acquire until release or loss, as far as this process can tell. */
  get held(): boolean {
    return this.#held !== undefined && this.#held.lost === undefined;
  }

  /**
   * Ms this acquisition is still certainly valid, measured on the monotonic clock from the moment
   * the acquire (or last extend) was sent, less a drift margin; 0 when not held.
   */
  get validityMs(): number {
    if (!this.held || !this.#held) return 0;
    return Math.max(0, this.#held.validUntil - performance.now());
  }

  #current(what: string): Held {
    if (!this.#held) {
      throw new TasukiError(
        'E_LOCK_STATE',
        `lock "${this.name}": no ${what} because it is not acquired; call acquire() first`,
      );
    }
    return this.#held;
  }

  /**
   * Acquires the lock and resolves its fencing token. While `blocking` (default) it retries every
   * `retryInterval` until `maxWait`; then, or at once when not blocking, it throws a
   * {@link LockTimeoutError} that says whether the lock was busy or Redis did not answer.
   * At `maxmemory` Redis refuses the acquisition: that throws `E_REDIS` at once.
   */
  async acquire(): Promise<bigint> {
    return (await this.#acquire(this.options.blocking, false)) as bigint;
  }

  /**
   * One attempt that does not wait for a busy lock: resolves the token, or `undefined` when someone
   * else holds the lock. Still throws {@link LockTimeoutError} when Redis does not answer within
   * `maxWait`.
   */
  async tryAcquire(): Promise<bigint | undefined> {
    return this.#acquire(false, true);
  }

  async #acquire(blocking: boolean, quiet: boolean): Promise<bigint | undefined> {
    if (this.#acquiring) {
      throw new TasukiError(
        'E_LOCK_STATE',
        `lock "${this.name}": acquire() is already in progress on this Lock object; use one Lock per holder`,
      );
    }
    this.#acquiring = true;
    try {
      return await this.#acquireLoop(blocking, quiet);
    } finally {
      this.#acquiring = false;
    }
  }

  async #acquireLoop(blocking: boolean, quiet: boolean): Promise<bigint | undefined> {
    if (this.#held) {
      throw new TasukiError(
        'E_LOCK_STATE',
        `lock "${this.name}" is already acquired by this Lock object (token ${this.#held.token}); release it first or use another Lock`,
      );
    }
    const { maxWaitMs, retryIntervalMs } = this.options;
    const start = performance.now();
    const deadline = start + maxWaitMs;
    let lastError: unknown;
    let lastPttl: number | undefined;
    for (;;) {
      const r = await this.#attempt(deadline);
      if (typeof r === 'bigint') return r;
      if (r === TIMED_OUT) {
        const waited = performance.now() - start;
        throw new LockTimeoutError(
          this.name,
          waited,
          `Redis did not answer${lastError instanceof Error ? ` (${lastError.message})` : ''}. Check that Redis is up and reachable.`,
          { cause: lastError },
        );
      }
      if ('error' in r) {
        lastError = r.error;
        lastPttl = undefined;
      } else {
        if (quiet) return undefined;
        lastPttl = r.pttl;
        lastError = undefined;
      }
      const left = deadline - performance.now();
      if (!blocking || left <= 0) {
        const reason =
          lastError instanceof Error
            ? `Redis is unavailable (${lastError.message}). Check that Redis is up and reachable.`
            : `it is held by another holder (expires in ${lastPttl ?? '?'} ms)${blocking ? '' : '; blocking is off'}. ` +
              `Raise maxWait, or run this work when the other holder is done.`;
        throw new LockTimeoutError(this.name, performance.now() - start, reason, { cause: lastError });
      }
      await sleep(Math.min(jitter(retryIntervalMs), left));
    }
  }

  async #attempt(
    deadline: number,
  ): Promise<bigint | typeof TIMED_OUT | { pttl: number } | { error: unknown }> {
    const owner = randomBytes(16).toString('base64url');
    const sent = performance.now();
    const call = run(
      this.#redis,
      lockAcquire({ lock: this.#key, fence: this.#fenceKey }, { owner, ttlMs: this.options.ttlMs }),
    );
    let reply;
    try {
      reply = await within(call, deadline - sent);
    } catch (err) {
      if (isOom(err)) {
        throw new TasukiError(
          'E_REDIS',
          `cannot acquire lock "${this.name}": Redis is at maxmemory and refuses new keys (${(err as Error).message}). ` +
            `Free memory or raise maxmemory; held locks can still be released and extended.`,
          { cause: err },
        );
      }
      if (this.#redis.status !== 'ready') return { error: err };
      throw new TasukiError('E_REDIS', `cannot acquire lock "${this.name}": ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (reply === TIMED_OUT) {
      // The attempt may still run when Redis comes back (ioredis queues it): queue a release behind it
      // so a lock nobody waits for any more does not linger for a whole TTL.
      call.then(() => run(this.#redis, lockRelease({ lock: this.#key }, { owner }))).catch(() => undefined);
      return TIMED_OUT;
    }
    if (reply[0] === 0) return { pttl: reply[1] };
    const token = BigInt(reply[1]);
    await this.#checkReplicas(owner);
    this.#onAcquired(owner, token, sent);
    return token;
  }

  async #checkReplicas(owner: string): Promise<void> {
    const want = this.options.waitReplicas;
    if (!want) return;
    let acked: number;
    try {
      acked = await waitForReplicas(this.#redis, this.#key, want.replicas, want.timeoutMs);
    } catch (err) {
      await run(this.#redis, lockRelease({ lock: this.#key }, { owner })).catch(() => undefined);
      throw new TasukiError(
        'E_REDIS',
        `lock "${this.name}": WAIT for replicas failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (acked >= want.replicas) return;
    await run(this.#redis, lockRelease({ lock: this.#key }, { owner })).catch(() => undefined);
    throw new LockReplicationError(this.name, want.replicas, acked, want.timeoutMs);
  }

  #onAcquired(owner: string, token: bigint, sent: number): void {
    const held: Held = {
      owner,
      token,
      validUntil: sent + this.options.ttlMs - driftMs(this.options.ttlMs),
      controller: new AbortController(),
      expiryTimer: undefined,
      renewTimer: undefined,
      lost: undefined,
    };
    this.#held = held;
    if (lockEvents.listening) lockEvents.emit('acquired', { name: this.name, token });
    this.#armExpiry(held);
    if (this.options.autoRenew) this.#scheduleRenew(held);
  }

  #armExpiry(held: Held): void {
    clearTimeout(held.expiryTimer);
    held.expiryTimer = setTimeout(
      () => this.#lose(held, 'its validity ended (ttl elapsed without a successful extend)'),
      Math.max(0, held.validUntil - performance.now()),
    );
    held.expiryTimer.unref();
  }

  #scheduleRenew(held: Held): void {
    held.renewTimer = setTimeout(
      () => {
        void this.#renew(held);
      },
      Math.max(1, Math.floor(this.options.ttlMs / 3)),
    );
    held.renewTimer.unref();
  }

  async #renew(held: Held): Promise<void> {
    if (this.#held !== held || held.lost) return;
    try {
      await this.#extendHeld(held, this.options.ttlMs, 'replace');
    } catch (err) {
      // Lost: #extendHeld already aborted the signal. Otherwise Redis did not answer: try again at the
      // next round; the expiry timer aborts the signal if no renewal lands before validity ends.
      if (err instanceof LockLostError) return;
    }
    if (this.#held === held && !held.lost) this.#scheduleRenew(held);
  }

  #lose(held: Held, reason: string): LockLostError {
    if (held.lost) return held.lost;
    held.lost = new LockLostError(this.name, held.token, reason);
    clearTimeout(held.expiryTimer);
    clearTimeout(held.renewTimer);
    held.controller.abort(held.lost);
    if (lockEvents.listening) lockEvents.emit('lost', { name: this.name, token: held.token, reason });
    return held.lost;
  }

  async #extendHeld(held: Held, ms: number, mode: 'replace' | 'add'): Promise<number> {
    const sent = performance.now();
    const reply = await this.#bounded(
      run(this.#redis, lockExtend({ lock: this.#key }, { owner: held.owner, ms, mode })),
      'extend',
    );
    if (reply === -1) {
      // Unreachable after resolveExtendMs; lock_extend.lua checks again so a bad ms never deletes the key.
      throw new OptionsError(`extend of lock ${quote(this.name)}`, [
        { path: 'ms', message: `${ms} is not a positive whole number of ms` },
      ]);
    }
    if (reply === 0) {
      throw this.#lose(held, 'extend found it expired or taken by another holder; it was not re-acquired');
    }
    if (held.lost) return reply;
    held.validUntil = sent + reply - driftMs(reply);
    this.#armExpiry(held);
    return reply;
  }

  async #bounded<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = Math.max(1000, this.options.ttlMs);
    const r = await within(p, ms);
    if (r === TIMED_OUT) {
      throw new TasukiError(
        'E_TIMEOUT',
        `lock "${this.name}": Redis did not answer ${what} within ${ms} ms; check that Redis is up`,
      );
    }
    return r;
  }

  /**
   * Extends the lock: its TTL becomes `ms` from now (default: the lock's ttl), or grows by `ms` with
   * `{ add: true }` (redis-py's default). Never re-acquires: when the lock has expired or belongs to
   * someone else this throws {@link LockLostError} and changes nothing. `ms` must be positive
   * (`OptionsError` otherwise — PEXPIRE with 0 would delete the key). Resolves the new TTL in ms.
   */
  async extend(ms: Duration = this.options.ttlMs, opts: { add?: boolean } = {}): Promise<number> {
    const value = resolveExtendMs(this.name, ms);
    const held = this.#current('extend');
    if (held.lost) throw held.lost;
    return this.#extendHeld(held, value, opts.add ? 'add' : 'replace');
  }

  /**
   * Releases the lock if this acquisition still owns it. Throws {@link LockLostError} when it had
   * expired or belongs to another holder (their lock is left alone), or when it was already known
   * lost here (`signal` aborted; its key, if still there, is deleted): the work done under it was
   * not continuously protected. Does nothing when not acquired.
   */
  async release(): Promise<void> {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    clearTimeout(held.expiryTimer);
    clearTimeout(held.renewTimer);
    const wasLost = held.lost;
    let released: number;
    try {
      released = await this.#bounded(
        run(this.#redis, lockRelease({ lock: this.#key }, { owner: held.owner })),
        'release',
      );
    } finally {
      if (!held.controller.signal.aborted) {
        held.controller.abort(new DOMException(`lock "${this.name}" released`, 'AbortError'));
      }
    }
    // Lost locally (validity ended, or a renewal found it gone): report it even if the key was still
    // there to delete (Redis expires it a drift margin later) — the work was not certainly protected.
    if (wasLost) throw wasLost;
    if (released === 1) return;
    throw this.#lose(held, 'it had expired or was taken by another holder when released');
  }

  /** True when this acquisition still owns the lock in Redis. */
  async isOwned(): Promise<boolean> {
    const held = this.#held;
    if (!held) return false;
    return (await this.#bounded(this.#redis.get(this.#key), 'GET')) === held.owner;
  }

  /** True when anyone holds the lock. */
  async isLocked(): Promise<boolean> {
    return (await this.#bounded(this.#redis.exists(this.#key), 'EXISTS')) === 1;
  }

  /** `await using` support: releases the lock (see {@link release}). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
