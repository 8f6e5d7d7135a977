import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import {
  LockLostError,
  Locks,
  StaleTokenError,
  TasukiError,
  fencedGet,
  fencedSet,
  tasukiKeys,
} from '../../src/index.js';
import { randomPrefix, useRedis } from '../support/redis.js';
import { isAcquireOf, watchCommands, watchKey } from './helpers.js';

// noeviction and a maxmemory below used_memory: Redis refuses commands that may grow memory
// ("OOM command not allowed") — the incident's state.
const server = useRedis({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'] });

const HOUR = 3_600_000; // TTLs of hours: no scheduling delay comes near them, so the bounds are exact

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

/** The error acquire() gives at maxmemory: E_REDIS that says so, with Redis's refusal as its cause. */
function isOomRefusal(err: unknown): boolean {
  assert.ok(err instanceof TasukiError, String(err));
  assert.equal(err.code, 'E_REDIS');
  assert.match(err.message, /^cannot acquire lock "[^"]+": Redis is at maxmemory/);
  assert.match(String(err.cause), /OOM command not allowed/);
  return true;
}

test('at maxmemory: held locks can be extended, auto-renewed and released; new acquisitions fail fast', async () => {
  const redis = server().client();
  await reset(redis);
  const prefix = randomPrefix();
  const keys = tasukiKeys(prefix);
  const locks = new Locks(redis, keys);
  const a = await locks.acquire('a', { ttl: HOUR });
  const b = await locks.acquire('b', { ttl: HOUR });
  // ttl 1500 renews every 500 ms, with ~1 s of room for a late renewal on a loaded machine.
  const renewed = await locks.acquire('c', { ttl: 1500, autoRenew: true });
  await fillUntilOom(redis, prefix);
  await assertOom(redis);
  const renewals = await watchKey(server(), keys.lock.key({ name: 'c' }));
  try {
    assert.equal(await a.extend(2 * HOUR), 2 * HOUR, 'extend works (PEXPIRE is allowed under OOM)');
    assert.ok((await redis.pttl(keys.lock.key({ name: 'a' }))) > HOUR);
    const added = await a.extend(HOUR, { add: true });
    assert.ok(added > 2 * HOUR && added <= 3 * HOUR, `add: ${added}`);

    // Each renewal is a PEXPIRE ("expire" event). Four of them, each at least ttl/3 after the one
    // before, all while Redis is at maxmemory: "c" outlived its ttl on renewals made under OOM.
    await renewals.reach('expire', 4);
    assert.equal(renewed.signal.aborted, false, 'auto-renew kept working');
    assert.equal(await renewed.isOwned(), true);
  } finally {
    renewals.close();
  }

  await a.release();
  await b.release();
  await renewed.release();
  assert.equal(await redis.exists(keys.lock.key({ name: 'a' }), keys.lock.key({ name: 'b' })), 0);
  await assertOom(redis);

  // Refused at the first attempt, not retried until maxWait (long, so only the count can show it).
  const attempts = await watchCommands(server(), isAcquireOf(keys.lockFence.key({ name: 'd' })));
  try {
    await assert.rejects(locks.lock('d', { maxWait: '10m' }).acquire(), isOomRefusal);
    await attempts.caughtUp();
    assert.equal(attempts.count(), 1, 'one attempt');
  } finally {
    attempts.close();
  }
  assert.equal(
    await redis.exists(keys.lock.key({ name: 'd' }), keys.lockFence.key({ name: 'd' })),
    0,
    'nothing half-written',
  );
  await reset(redis);
});

test('at maxmemory: tryAcquire and waiters get E_REDIS at once, losses are still LockLostError, fenced writes refused cleanly; all works again once memory is freed', async () => {
  const redis = server().client();
  await reset(redis);
  const prefix = randomPrefix();
  const keys = tasukiKeys(prefix);
  const locks = new Locks(redis, keys, { ttl: HOUR });
  const valueKey = `${prefix}:v1:report`;

  const holder = await locks.acquire('busy');
  const lost = await locks.acquire('lost');
  const before = holder.token > lost.token ? holder.token : lost.token;
  await fencedSet(redis, valueKey, holder.token, 'before');
  await redis.del(keys.lock.key({ name: 'lost' })); // expired, or broken by someone: not ours any more
  await fillUntilOom(redis, prefix);
  await assertOom(redis);

  // A free lock: tryAcquire throws E_REDIS (it does not report "held by someone" with undefined).
  await assert.rejects(locks.lock('free').tryAcquire(), isOomRefusal);
  // A held lock: a blocking waiter is refused at its first attempt too, instead of waiting up to
  // maxWait for a release it could not act on (SET NX is refused whether the key exists or not).
  await assert.rejects(locks.lock('busy', { maxWait: '10m' }).acquire(), isOomRefusal);
  await assert.rejects(locks.lock('busy').tryAcquire(), isOomRefusal);
  for (const name of ['free', 'busy']) {
    assert.equal(
      await redis.get(keys.lockFence.key({ name })),
      name === 'busy' ? holder.token.toString() : null,
    );
  }

  // Reads answer.
  assert.equal(await holder.isOwned(), true);
  assert.equal(await locks.lock('busy').isLocked(), true);
  assert.equal(await locks.lock('free').isLocked(), false);

  // A lock lost before the incident is reported lost, not as a Redis failure, and not re-created.
  await assert.rejects(
    lost.extend(),
    (err: unknown) => err instanceof LockLostError && err.token === lost.token,
  );
  await assert.rejects(lost.release(), LockLostError);
  assert.equal(await redis.exists(keys.lock.key({ name: 'lost' })), 0);

  // Fenced Redis value: a newer token is refused with E_REDIS and nothing is written; a stale token
  // is still told it is stale (the check reads before it would write).
  await assert.rejects(fencedSet(redis, valueKey, holder.token + 1n, 'during'), (err: unknown) => {
    assert.ok(err instanceof TasukiError && !(err instanceof StaleTokenError), String(err));
    assert.equal(err.code, 'E_REDIS');
    assert.match(err.message, /maxmemory.*nothing was written/);
    return true;
  });
  await assert.rejects(fencedSet(redis, valueKey, holder.token - 1n, 'stale'), (err: unknown) => {
    assert.ok(err instanceof StaleTokenError);
    assert.equal(err.current, holder.token);
    return true;
  });
  assert.deepEqual(await fencedGet(redis, valueKey), { value: 'before', token: holder.token });

  // The holder can still let go, and the lock is free in Redis.
  await holder.release();
  assert.equal(await locks.lock('busy').isLocked(), false);

  // Memory freed: acquisition works again, with tokens above every earlier one (the refused attempts
  // issued none).
  await redis.config('SET', 'maxmemory', '0');
  const again = await locks.acquire('busy');
  const fresh = await locks.acquire('free');
  assert.ok(again.token > before && fresh.token > before, `${again.token}, ${fresh.token} > ${before}`);
  await fencedSet(redis, valueKey, again.token, 'after');
  assert.deepEqual(await fencedGet(redis, valueKey), { value: 'after', token: again.token });
  await again.release();
  await fresh.release();
  await reset(redis);
});
