/**
 * A typed app keyspace: get / set / delete / mget / getOrSet on values in their envelope, every
 * write with its TTL, older formats migrated on read and rewritten in place, and one computation
 * per key across processes when many callers miss at once (a fenced lock with a bounded wait).
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError, TasukiError } from '../errors.js';
import type { KeyDef } from '../keys/registry.js';
import type { Lock } from '../lock/lock.js';
import type { Locks } from '../lock/locks.js';
import type { LockOptions } from '../lock/options.js';
import { keyspaceRewrite, registerScripts, run } from '../scripts/catalogue.js';
import type { Duration } from '../util/duration.js';
import { duration, parseOptions } from '../util/options.js';
import { z } from 'zod';
import { KeyValueError } from './errors.js';
import type { ValueFormat } from './format.js';
import type { ResolvedKeyspaceOptions } from './options.js';

/** What a keyspace needs of the app: its Redis connection and its locks. A tasuki app is one. */
export interface KeyspaceHost {
  redis(): Promise<RedisConnection>;
  locks(defaults?: LockOptions): Promise<Locks>;
}

/** Options of a write. */
export interface WriteOptions {
  /** TTL of this write instead of the keyspace's (ms or `"10m"`). */
  ttl?: Duration;
}

/** What a read found. */
type Read<T> = { state: 'hit'; value: T } | { state: 'miss' } | { state: 'newer' };

const writeSchema = z.strictObject({ ttl: duration().optional() });

/** A typed keyspace made by {@link defineKeyspace}: every key is `<prefix>:v<n>:<name>:<id>`. */
export class AppKeyspace<T> {
  /** The keyspace's name. */
  readonly name: string;
  /** Its format version. */
  readonly version: number;

  /** @internal Made by {@link defineKeyspace}. */
  constructor(
    private readonly host: KeyspaceHost,
    /** The key declaration in the app's registry (what the catalogue and the audit show). */
    readonly def: KeyDef<string>,
    private readonly format: ValueFormat<T>,
    private readonly o: ResolvedKeyspaceOptions,
  ) {
    this.name = o.name;
    this.version = o.version;
  }

  /** The full key name of an id (long or unusual ids are hashed, see `keyPart`). */
  key(id: string): string {
    return this.def.key({ id });
  }

  private async redis(): Promise<RedisConnection> {
    const r = await this.host.redis();
    registerScripts(r);
    return r;
  }

  private ttlOf(options: WriteOptions | undefined): number | undefined {
    const o = options ? parseOptions(writeSchema, options, 'write options', 'E_OPTIONS') : {};
    if (o.ttl !== undefined && this.o.ttl === undefined) {
      throw new TasukiError(
        'E_OPTIONS',
        `keyspace "${this.name}" is declared without a TTL (${this.o.noTtlReason ?? ''}); a write cannot give one. Declare a ttl instead.`,
      );
    }
    return o.ttl ?? this.o.ttl;
  }

  /** Decodes what GET returned; migrates and rewrites an older value in place. */
  private async interpret(redis: RedisConnection, key: string, raw: Buffer | null): Promise<Read<T>> {
    if (raw === null) return { state: 'miss' };
    const d = await this.format.decode(key, raw);
    if (d.state === 'newer') {
      if (this.o.onNewer === 'error') {
        throw new KeyValueError({
          keyspace: this.name,
          key,
          problem: 'newer',
          version: this.version,
          storedVersion: d.header.version,
          detail: `the value is format v${d.header.version}, written by ${d.header.writer}; this code reads up to v${this.version}. Deploy the newer code here too (or set onNewer: 'ignore' to treat such values as missing).`,
        });
      }
      return { state: 'newer' };
    }
    if (d.migrated) {
      // Lazy migration: only if nobody wrote the key since we read it (the newer write wins).
      await run(
        redis,
        keyspaceRewrite({ value: key }, { expected: raw, value: d.migrated, ttlMs: this.o.ttl ?? 0 }),
      ).catch(() => undefined);
    }
    return { state: 'hit', value: d.value };
  }

  private async read(id: string): Promise<Read<T>> {
    const key = this.key(id);
    const redis = await this.redis();
    let raw: Buffer | null;
    try {
      raw = await redis.getBuffer(key);
    } catch (err) {
      throw redisError(`keyspace "${this.name}": GET ${key}`, err, { wrote: false });
    }
    return this.interpret(redis, key, raw);
  }

  /**
   * The value of `id`, or `undefined` when there is none (or, with `onNewer: 'ignore'`, when a
   * newer app version wrote it). Throws `E_KEY_VALUE` when the value does not match the schema or
   * cannot be migrated.
   */
  async get(id: string): Promise<T | undefined> {
    const r = await this.read(id);
    return r.state === 'hit' ? r.value : undefined;
  }

  /** Values of many ids in one MGET, in order (`undefined` where missing). One hash slot on a cluster. */
  async mget(ids: readonly string[]): Promise<(T | undefined)[]> {
    if (ids.length === 0) return [];
    const keys = ids.map((id) => this.key(id));
    const redis = await this.redis();
    let raws: (Buffer | null)[];
    try {
      raws = await redis.mgetBuffer(...keys);
    } catch (err) {
      throw redisError(`keyspace "${this.name}": MGET of ${keys.length} keys`, err, { wrote: false });
    }
    const out: (T | undefined)[] = [];
    for (let i = 0; i < keys.length; i++) {
      const r = await this.interpret(redis, keys[i] as string, raws[i] ?? null);
      out.push(r.state === 'hit' ? r.value : undefined);
    }
    return out;
  }

  /** Writes `value` (checked against the schema) with the keyspace's TTL, or `options.ttl`. */
  async set(id: string, value: T, options?: WriteOptions): Promise<void> {
    const ttl = this.ttlOf(options);
    const key = this.key(id);
    const raw = await this.format.encode(key, value);
    const redis = await this.redis();
    try {
      if (ttl === undefined) await redis.set(key, raw);
      else await redis.set(key, raw, 'PX', ttl);
    } catch (err) {
      throw redisError(`keyspace "${this.name}": SET ${key}`, err);
    }
  }

  /** Deletes `id`; true when it existed. */
  async delete(id: string): Promise<boolean> {
    const key = this.key(id);
    try {
      return (await (await this.redis()).del(key)) === 1;
    } catch (err) {
      throw redisError(`keyspace "${this.name}": DEL ${key}`, err);
    }
  }

  /**
   * The value of `id`; when missing, `compute()` runs and its value is written — once per key
   * across processes: the first caller takes a fenced lock and computes; the others wait (up to
   * `getOrSet.wait`) for its value, taking over if its lock expires; after the wait they fall back
   * to computing themselves (`fallback: 'compute'`) or throw `E_LOCK_TIMEOUT`. A value written by a
   * newer app version is left alone: the computed value is returned, not written.
   */
  async getOrSet(id: string, compute: () => T | Promise<T>, options?: WriteOptions): Promise<T> {
    this.ttlOf(options);
    const first = await this.read(id);
    if (first.state === 'hit') return first.value;
    if (first.state === 'newer') return compute();
    const locks = await this.host.locks();
    const lock = locks.lock(`keyspace:${this.name}:${id}`, {
      ttl: this.o.getOrSet.lockTtl,
      blocking: false,
      autoRenew: true,
    });
    const deadline = Date.now() + this.o.getOrSet.wait;
    let pause = 10;
    for (;;) {
      if ((await lock.tryAcquire()) !== undefined) return this.computeHolding(lock, id, compute, options);
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, Math.min(pause * (0.5 + Math.random()), deadline - Date.now())));
      pause = Math.min(pause * 2, 100);
      const r = await this.read(id);
      if (r.state === 'hit') return r.value;
      if (r.state === 'newer') return compute();
    }
    if (this.o.getOrSet.fallback === 'error') {
      throw new TasukiError(
        'E_LOCK_TIMEOUT',
        `keyspace "${this.name}": getOrSet("${id}") waited ${this.o.getOrSet.wait} ms for another process to compute the value; raise getOrSet.wait or use fallback: 'compute'`,
      );
    }
    const value = await compute();
    await this.set(id, value, options);
    return value;
  }

  private async computeHolding(
    lock: Lock,
    id: string,
    compute: () => T | Promise<T>,
    options?: WriteOptions,
  ): Promise<T> {
    try {
      // Someone may have written it between our miss and our lock.
      const again = await this.read(id);
      if (again.state === 'hit') return again.value;
      const value = await compute();
      if (again.state === 'miss') await this.set(id, value, options);
      return value;
    } finally {
      await lock.release().catch(() => undefined);
    }
  }
}
