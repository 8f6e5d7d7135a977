import assert from 'node:assert/strict';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import {
  Lock,
  LockLostError,
  LockReplicationError,
  LockTimeoutError,
  Locks,
  OptionsError,
  StaleTokenError,
  TasukiError,
  fencedGet,
  fencedSet,
  tasukiKeys,
  withLock,
} from '../../src/index.js';
import { TestRedis } from '../../src/testing/index.js';
import { randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis();

function setup(): { redis: Redis; locks: Locks; keys: ReturnType<typeof tasukiKeys> } {
  const redis = server().client();
  const keys = tasukiKeys(randomPrefix());
  return { redis, keys, locks: new Locks(redis, keys) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `signal` aborts (at once if it already has). */
async function aborted(signal: AbortSignal): Promise<void> {
  if (!signal.aborted) await once(signal, 'abort');
}

test('acquire returns increasing bigint tokens; release frees the lock; isOwned/isLocked', async () => {
  const { locks, redis, keys } = setup();
  const a = locks.lock('job');
  assert.equal(await a.isLocked(), false);
  const t1 = await a.acquire();
  assert.equal(typeof t1, 'bigint');
  assert.equal(a.token, t1);
  assert.equal(await a.isOwned(), true);
  assert.equal(await a.isLocked(), true);
  const pttl = await redis.pttl(keys.lock.key({ name: 'job' }));
  assert.ok(pttl > 29_000 && pttl <= 30_000, `default ttl 30 s, got ${pttl}`);
  assert.equal(await redis.ttl(keys.lockFence.key({ name: 'job' })), -1, 'the counter has no TTL');
  await a.release();
  assert.equal(await a.isLocked(), false);
  assert.equal(a.held, false);
  const t2 = await a.acquire();
  assert.ok(t2 > t1, `${t2} > ${t1}`);
  await a.release();
  await a.release(); // not acquired: nothing to do
});

test('a busy lock: non-blocking fails at once, tryAcquire gives undefined, blocking waits for release', async () => {
  const { locks } = setup();
  const holder = await locks.acquire('busy', { ttl: 5000 });
  const held = holder.token;
  const t0 = performance.now();
  await assert.rejects(locks.lock('busy', { blocking: false }).acquire(), (err: unknown) => {
    assert.ok(err instanceof LockTimeoutError);
    assert.equal(err.code, 'E_LOCK_TIMEOUT');
    assert.match(err.message, /held by another holder.*blocking is off/);
    return true;
  });
  assert.ok(performance.now() - t0 < 500);
  assert.equal(await locks.lock('busy').tryAcquire(), undefined);
  await assert.rejects(locks.lock('busy', { maxWait: 150, retryInterval: 20 }).acquire(), LockTimeoutError);

  const waiter = locks.lock('busy', { maxWait: 3000, retryInterval: 20 });
  const pending = waiter.acquire();
  await sleep(100);
  await holder.release();
  const token = await pending;
  assert.ok(token > held);
  await waiter.release();
});

test('a holder whose lock expired and was taken can neither release nor extend the new lock', async () => {
  const { locks } = setup();
  const a = locks.lock('own', { ttl: 100 });
  const ta = await a.acquire();
  await sleep(150);
  const b = locks.lock('own', { ttl: 5000 });
  const tb = await b.acquire();
  assert.ok(tb > ta);
  await assert.rejects(a.extend(5000), LockLostError);
  await assert.rejects(a.release(), (err: unknown) => err instanceof LockLostError && err.token === ta);
  assert.equal(await b.isOwned(), true, "B's lock is untouched");
  await b.release();
});

test('extend of an expired lock is refused and never re-acquires it', async () => {
  const { locks, redis, keys } = setup();
  const a = locks.lock('exp', { ttl: 80 });
  await a.acquire();
  await sleep(130);
  await assert.rejects(a.extend(10_000), (err: unknown) => {
    assert.ok(err instanceof LockLostError);
    assert.equal(err.code, 'E_LOCK_LOST');
    return true;
  });
  assert.equal(await redis.exists(keys.lock.key({ name: 'exp' })), 0, 'no key was created');
  assert.equal(a.signal.aborted, true);
  await assert.rejects(a.release(), LockLostError);
});

test('ttl <= 0 is refused: for extend (the key keeps its TTL) and for the lock itself', async () => {
  const { locks, redis, keys } = setup();
  const a = await locks.acquire('ttl', { ttl: 5000 });
  for (const bad of [0, -5, 1.5, Number.NaN]) {
    await assert.rejects(
      a.extend(bad),
      (err: unknown) => err instanceof OptionsError && err.code === 'E_OPTIONS',
    );
  }
  const pttl = await redis.pttl(keys.lock.key({ name: 'ttl' }));
  assert.ok(pttl > 4000, `still there with its TTL, got ${pttl}`);
  assert.equal(await a.extend(20_000), 20_000);
  assert.ok((await redis.pttl(keys.lock.key({ name: 'ttl' }))) > 19_000);
  const added = await a.extend(1000, { add: true });
  assert.ok(added > 20_000 && added <= 21_000, `add: ${added}`);
  await a.release();
  for (const ttl of [0, -1]) {
    assert.throws(() => locks.lock('ttl', { ttl }), OptionsError);
  }
  assert.throws(() => locks.lock('ttl', { waitReplicas: { replicas: 0 } }), /waitReplicas.replicas/);
});

test('the signal aborts when validity ends without extend; validity is on the monotonic clock', async () => {
  const { locks } = setup();
  const a = await locks.acquire('valid', { ttl: 200 });
  assert.ok(
    a.validityMs > 0 && a.validityMs <= 200 - 4,
    `validity ${a.validityMs} ms: ttl less drift, less time spent`,
  );
  const t0 = performance.now();
  await aborted(a.signal);
  const waited = performance.now() - t0;
  assert.ok(waited < 1000, `aborted when the validity ended (${waited} ms)`);
  assert.ok(a.signal.reason instanceof LockLostError);
  assert.equal(a.held, false);
  assert.equal(a.validityMs, 0);
});

test('auto-renew keeps the lock past its TTL and aborts the signal the moment it is lost', async () => {
  const { locks, redis, keys } = setup();
  const a = await locks.acquire('renew', { ttl: 600, autoRenew: true });
  await sleep(1000);
  assert.equal(await a.isOwned(), true);
  assert.equal(a.signal.aborted, false);
  await redis.del(keys.lock.key({ name: 'renew' })); // someone broke it
  const t0 = performance.now();
  await aborted(a.signal);
  assert.ok(performance.now() - t0 < 600, 'noticed at the next renewal (every ttl/3), before the ttl');
  assert.match((a.signal.reason as Error).message, /expired or taken/);
  await assert.rejects(a.release(), LockLostError);
});

test('await using releases at the end of the block; withLock releases and passes errors through', async () => {
  const { locks, redis, keys } = setup();
  const key = keys.lock.key({ name: 'scoped' });
  {
    await using lock = await locks.acquire('scoped');
    assert.equal(await redis.exists(key), 1);
    assert.ok(lock.held);
  }
  assert.equal(await redis.exists(key), 0);

  const out = await locks.withLock('scoped', async (lock) => {
    assert.equal(await lock.isOwned(), true);
    return 42;
  });
  assert.equal(out, 42);
  assert.equal(await redis.exists(key), 0);
  await assert.rejects(
    withLock(locks.lock('scoped'), () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await redis.exists(key), 0);
  await assert.rejects(
    locks.withLock('scoped', () => sleep(150), { ttl: 50 }),
    LockLostError,
    'work that outlived its lock is reported',
  );
  const again = locks.lock('scoped');
  await again.acquire();
  await assert.rejects(
    again.acquire(),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_LOCK_STATE',
  );
  await again.release();
  const racing = locks.lock('scoped');
  const first = racing.acquire();
  await assert.rejects(
    racing.tryAcquire(),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_LOCK_STATE',
  );
  assert.equal(typeof (await first), 'bigint');
  await racing.release();
  const free = locks.lock('scoped');
  assert.equal(typeof (await free.tryAcquire()), 'bigint');
  await free.release();
});

test('counter key deleted, or far ahead of the clock: tokens still rise', async () => {
  const { locks, redis, keys } = setup();
  const fence = keys.lockFence.key({ name: 'ctr' });
  const lock = locks.lock('ctr');
  const seen: bigint[] = [];
  for (let i = 0; i < 5; i++) {
    seen.push(await lock.acquire());
    await lock.release();
  }
  await redis.del(fence);
  seen.push(await lock.acquire());
  await lock.release();
  // A counter ahead of the clock (many acquisitions within one microsecond) wins over the floor.
  const ahead = BigInt(Date.now()) * 1000n + 10n ** 12n;
  await redis.set(fence, ahead.toString());
  seen.push(await lock.acquire());
  await lock.release();
  assert.equal(seen.at(-1), ahead + 1n);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `${seen[i]} > ${seen[i - 1]}`);
});

test('Redis fenced value: compare-and-set by token, strictly newer only', async () => {
  const { redis } = setup();
  const key = `${randomPrefix()}:v1:report`;
  await fencedSet(redis, key, 10n, 'a', { ttl: 60_000 });
  await fencedSet(redis, key, 11n, 'b');
  await assert.rejects(fencedSet(redis, key, 11n, 'c'), (err: unknown) => {
    assert.ok(err instanceof StaleTokenError);
    assert.equal(err.current, 11n);
    return true;
  });
  await assert.rejects(fencedSet(redis, key, 9n, 'd'), StaleTokenError);
  // Token strings of different lengths compare as numbers, not as text.
  await fencedSet(redis, key, 100n, 'e');
  await assert.rejects(fencedSet(redis, key, 99n, 'f'), StaleTokenError);
  assert.deepEqual(await fencedGet(redis, key), { value: 'e', token: 100n });
  assert.ok((await redis.pttl(key)) > 0);
});

test('WAIT for replicas: acquires with enough replicas; otherwise releases and says so', async () => {
  await server().client().config('SET', 'repl-diskless-sync-delay', '0'); // sync the replica at once
  const replica = await TestRedis.start({ args: ['--replicaof', '127.0.0.1', String(server().port)] });
  try {
    const { redis, keys } = setup();
    const r = replica.client();
    await until(
      async () => /master_link_status:up/.test(await r.info('replication')),
      10_000,
      'replica link',
    );
    const ok = new Lock(redis, keys, 'repl', { waitReplicas: { replicas: 1, timeout: 2000 } });
    const token = await ok.acquire();
    assert.equal(
      await r.get(keys.lock.key({ name: 'repl' })),
      await redis.get(keys.lock.key({ name: 'repl' })),
    );
    await ok.release();
    const tooMany = new Lock(redis, keys, 'repl', { waitReplicas: { replicas: 2, timeout: 100 } });
    await assert.rejects(tooMany.acquire(), (err: unknown) => {
      assert.ok(err instanceof LockReplicationError);
      assert.equal(err.acknowledged, 1);
      return true;
    });
    assert.equal(await redis.exists(keys.lock.key({ name: 'repl' })), 0, 'released again');
    assert.ok((await new Lock(redis, keys, 'repl').acquire()) > token);
  } finally {
    await replica.close();
  }
});

// The two tests below stop and restart the file's server: keep them last.

test('Redis restarted without persistence: the next token is still greater', async () => {
  const { locks } = setup();
  const lock = locks.lock('restart');
  let last = 0n;
  for (let i = 0; i < 3; i++) {
    last = await lock.acquire();
    await lock.release();
  }
  await server().restart({ kill: true });
  const next = await lock.acquire();
  assert.ok(next > last, `${next} > ${last}`);
  await lock.release();
});

test('Redis down: a clear LockTimeoutError within maxWait, no hang; no lock left behind later', async () => {
  const { keys } = setup();
  // Two kinds of connection: one that queues commands while offline, one that fails them fast.
  const queueing = server().client();
  const failing = new Redis(server().port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  failing.on('error', () => undefined);
  await failing.ping();
  await server().stop({ kill: true });
  try {
    for (const redis of [queueing, failing]) {
      const lock = new Lock(redis, keys, 'down', { maxWait: 300, retryInterval: 50 });
      const t0 = performance.now();
      await assert.rejects(lock.acquire(), (err: unknown) => {
        assert.ok(err instanceof LockTimeoutError, String(err));
        assert.match(
          err.message,
          /could not acquire lock "down" within \d+ ms: Redis (did not answer|is unavailable)/,
        );
        return true;
      });
      const took = performance.now() - t0;
      assert.ok(took < 1300, `gave up after ${took} ms (maxWait 300 ms)`);
    }
  } finally {
    await server().restart();
  }
  await until(() => queueing.status === 'ready', 5000, 'reconnect');
  await until(
    async () => (await queueing.exists(keys.lock.key({ name: 'down' }))) === 0,
    2000,
    'no stray lock',
  );
  failing.disconnect();
});
