import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { Locks, TasukiError, tasukiKeys } from '../../src/index.js';
import { randomPrefix, useRedis } from '../support/redis.js';

// noeviction and a maxmemory below used_memory: Redis refuses commands that may grow memory
// ("OOM command not allowed") — the incident's state.
const server = useRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] });

/**
 * Puts Redis over maxmemory for good: writes some data, then sets maxmemory 256 KB below what is used,
 * so every command that may grow memory is refused whatever the size of its own arguments.
 */
async function fillUntilOom(redis: Redis, prefix: string): Promise<void> {
  const big = 'x'.repeat(16 * 1024);
  const fill = redis.pipeline();
  for (let i = 0; i < 64; i++) fill.set(`${prefix}:fill:${i}`, big);
  await fill.exec();
  const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
  await redis.config('SET', 'maxmemory', String(used - 256 * 1024));
}

async function reset(redis: Redis): Promise<void> {
  await redis.config('SET', 'maxmemory', '0');
  await redis.flushall();
}

async function assertOom(redis: Redis): Promise<void> {
  await assert.rejects(redis.set('probe', '1'), /^ReplyError: OOM|OOM command not allowed/);
}

test('at maxmemory: held locks can be extended, auto-renewed and released; new acquisitions fail fast', async () => {
  const redis = server().client();
  await reset(redis);
  const prefix = randomPrefix();
  const keys = tasukiKeys(prefix);
  const locks = new Locks(redis, keys);
  const a = await locks.acquire('a', { ttl: 5000 });
  const b = await locks.acquire('b', { ttl: 5000 });
  const renewed = await locks.acquire('c', { ttl: 600, autoRenew: true });
  await fillUntilOom(redis, prefix);
  await assertOom(redis);

  assert.equal(await a.extend(60_000), 60_000, 'extend works (PEXPIRE is allowed under OOM)');
  assert.ok((await redis.pttl(keys.lock.key({ name: 'a' }))) > 59_000);
  assert.ok((await a.extend(1000, { add: true })) > 60_000);

  await new Promise((r) => setTimeout(r, 1000)); // > ttl: only the renewals keep "c" alive
  assert.equal(renewed.signal.aborted, false, 'auto-renew kept working');
  assert.equal(await renewed.isOwned(), true);

  await a.release();
  await b.release();
  await renewed.release();
  assert.equal(await redis.exists(keys.lock.key({ name: 'a' }), keys.lock.key({ name: 'b' })), 0);
  await assertOom(redis);

  const started = Date.now();
  await assert.rejects(locks.lock('d', { maxWait: 5000 }).acquire(), (err: unknown) => {
    assert.ok(err instanceof TasukiError);
    assert.equal(err.code, 'E_REDIS');
    assert.match(err.message, /maxmemory/);
    return true;
  });
  assert.ok(Date.now() - started < 1000, 'not retried until maxWait');
  assert.equal(await redis.exists(keys.lockFence.key({ name: 'd' })), 0, 'nothing half-written');
  await reset(redis);
});

test('why the lock scripts have no shebang: Redis 7 refuses a flagged script without allow-oom whole', async () => {
  const redis = server().client();
  await reset(redis);
  const prefix = randomPrefix();
  await redis.set(`${prefix}:victim1`, 'v');
  await redis.set(`${prefix}:victim2`, 'v');
  await redis.set(`${prefix}:victim3`, 'v');
  await fillUntilOom(redis, prefix);
  const del = "return redis.call('DEL', KEYS[1])";
  // With a shebang and no allow-oom flag the script is refused before it runs, though it only deletes.
  await assert.rejects(redis.eval(`#!lua\n${del}`, 1, `${prefix}:victim1`), /OOM/);
  // Without a shebang, the OOM check applies per command: DEL runs, SET/INCR would be refused.
  assert.equal(await redis.eval(del, 1, `${prefix}:victim1`), 1);
  await assert.rejects(redis.eval("return redis.call('INCR', KEYS[1])", 1, `${prefix}:counter`), /OOM/);
  // allow-oom lets a flagged script run anything (also commands that grow memory), so it is not used.
  assert.equal(await redis.eval(`#!lua flags=allow-oom\n${del}`, 1, `${prefix}:victim2`), 1);
  await reset(redis);
});
