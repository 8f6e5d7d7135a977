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
import { driftMs } from '../../src/lock/timing.js';
import { TestRedis } from '../../src/testing/index.js';
import { onCluster, randomPrefix, until, useRedis } from '../support/redis.js';
import { isAcquireOf, track, watchCommands, watchKey } from './helpers.js';

const server = useRedis();

function setup(): { redis: Redis; locks: Locks; keys: ReturnType<typeof tasukiKeys> } {
  const redis = server().client();
  const keys = tasukiKeys(randomPrefix());
  return { redis, keys, locks: new Locks(redis, keys) };
}

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
  assert.equal(a.options.ttlMs, 30_000, 'default ttl 30 s');
  const pttl = await redis.pttl(keys.lock.key({ name: 'job' }));
  // Set on the key as such: at most 30 s, and well above any other default (the 15 s of room is for a
  // loaded machine, between the acquire and this PTTL).
  assert.ok(pttl > 15_000 && pttl <= 30_000, `default ttl 30 s on the key, got ${pttl}`);
  assert.equal(await redis.ttl(keys.lockFence.key({ name: 'job' })), -1, 'the counter has no TTL');
  await a.release();
  assert.equal(await a.isLocked(), false);
  assert.equal(a.held, false);
  const t2 = await a.acquire();
  assert.ok(t2 > t1, `${t2} > ${t1}`);
  await a.release();
  await a.release(); // not acquired: nothing to do
});

test(
  'a busy lock: non-blocking fails at once, tryAcquire gives undefined, blocking waits for release',
  { skip: onCluster && 'single server only: watches commands with MONITOR on one server' },
  async () => {
    const { locks, keys } = setup();
    const fence = keys.lockFence.key({ name: 'busy' });
    const holder = await locks.acquire('busy', { ttl: 600_000 });
    const held = holder.token;
    const attempts = await watchCommands(server(), isAcquireOf(fence));
    try {
      // maxWait is long: "at once" is shown by the number of attempts, not by how fast it failed.
      await assert.rejects(
        locks.lock('busy', { blocking: false, maxWait: '10m' }).acquire(),
        (err: unknown) => {
          assert.ok(err instanceof LockTimeoutError);
          assert.equal(err.code, 'E_LOCK_TIMEOUT');
          assert.match(err.message, /held by another holder.*blocking is off/);
          return true;
        },
      );
      await attempts.caughtUp();
      assert.equal(attempts.count(), 1, 'non-blocking: exactly one attempt');
      assert.equal(await locks.lock('busy', { maxWait: '10m' }).tryAcquire(), undefined);
      await attempts.caughtUp();
      assert.equal(
        attempts.count(),
        2,
        'tryAcquire: exactly one attempt, although blocking and maxWait allow more',
      );
      await assert.rejects(
        locks.lock('busy', { maxWait: 150, retryInterval: 20 }).acquire(),
        LockTimeoutError,
      );

      const before = attempts.count();
      const waiter = locks.lock('busy', { maxWait: '10m', retryInterval: 20 });
      const pending = track(waiter.acquire());
      // A second attempt means the waiter had the "busy" answer to its first and kept waiting.
      await Promise.race([attempts.reach(before + 2), pending.promise]);
      assert.equal(pending.settled(), false, 'the waiter is still waiting while the lock is held');
      assert.equal(await holder.isOwned(), true);
      await holder.release();
      const token = await pending.promise;
      assert.ok(token > held);
      await waiter.release();
    } finally {
      attempts.close();
    }
  },
);

test('a holder whose lock expired and was taken can neither release nor extend the new lock', async () => {
  const { locks } = setup();
  const a = locks.lock('own', { ttl: 100 });
  const ta = await a.acquire();
  const b = locks.lock('own', { ttl: 600_000 });
  const tb = await b.acquire(); // blocking: waits until A's lock has expired in Redis
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
  await until(async () => (await redis.exists(keys.lock.key({ name: 'exp' }))) === 0, 10_000, 'expiry');
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
  const hour = 3_600_000; // TTLs of hours: no scheduling delay comes near them, so the bounds are exact
  const a = await locks.acquire('ttl', { ttl: hour });
  for (const bad of [0, -5, 1.5, Number.NaN, '0s', 'soon']) {
    await assert.rejects(a.extend(bad as never), (err: unknown) => {
      assert.ok(err instanceof OptionsError);
      assert.equal(err.code, 'E_OPTIONS');
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['ms'],
      );
      assert.ok(
        err.message.includes(typeof bad === 'string' ? JSON.stringify(bad) : String(bad)),
        err.message,
      );
      return true;
    });
  }
  const pttl = await redis.pttl(keys.lock.key({ name: 'ttl' }));
  assert.ok(pttl > hour / 2, `still there with its TTL, got ${pttl}`);
  assert.equal(await a.extend(2 * hour), 2 * hour);
  assert.ok((await redis.pttl(keys.lock.key({ name: 'ttl' }))) > hour, 'raised to 2 h');
  const added = await a.extend('1h', { add: true });
  assert.ok(added > 2 * hour && added <= 3 * hour, `add: what was left plus 1 h, got ${added}`);
  await a.release();
  for (const ttl of [0, -1]) {
    assert.throws(() => locks.lock('ttl', { ttl }), OptionsError);
  }
  assert.throws(() => locks.lock('ttl', { waitReplicas: { replicas: 0 } }), /waitReplicas.replicas/);
});

test('bad lock options: one OptionsError names every bad field and quotes its value; nothing reaches Redis', async () => {
  const { locks, redis, keys } = setup();
  const bad = {
    ttl: 1.5,
    blocking: 'yes',
    maxWait: -1,
    retryInterval: '0s',
    autoRenew: 1,
    waitReplicas: { replicas: 0, timeout: 'soon' },
    timeout: 5000, // redis-py's name for ttl
  };
  assert.throws(
    () => locks.lock('opts', bad as never),
    (err: unknown) => {
      assert.ok(err instanceof OptionsError);
      assert.equal(err.code, 'E_OPTIONS');
      const byPath = Object.fromEntries(err.issues.map((i) => [i.path, i.message]));
      assert.deepEqual(Object.keys(byPath).sort(), [
        'autoRenew',
        'blocking',
        'maxWait',
        'retryInterval',
        'timeout',
        'ttl',
        'waitReplicas.replicas',
        'waitReplicas.timeout',
      ]);
      assert.match(byPath.ttl!, /^1\.5 is not a positive whole number of ms/);
      assert.ok(byPath.blocking!.includes('"yes"'), byPath.blocking); // zod's message, with the value
      assert.match(byPath.maxWait!, /^-1 is not .*or Infinity/);
      assert.match(byPath.retryInterval!, /^"0s" is not/);
      assert.match(byPath['waitReplicas.replicas']!, /^0 is not an integer >= 1/);
      assert.match(byPath['waitReplicas.timeout']!, /^"soon" is not/);
      assert.equal(byPath.timeout, 'unknown option');
      assert.match(err.message, /^invalid options for lock "opts": /);
      return true;
    },
  );
  assert.throws(() => locks.lock(''), /name: "" is not a lock name/);
  // A huge bad value is quoted as a bounded prefix.
  assert.throws(
    () => locks.lock('opts', { ttl: 'x'.repeat(20_000) as never }),
    (err: unknown) =>
      err instanceof OptionsError && err.message.length < 500 && /20002 characters/.test(err.message),
  );
  // Good values of every kind are accepted and resolved.
  const ok = locks.lock('opts', {
    ttl: '2s',
    blocking: false,
    maxWait: Infinity,
    retryInterval: 50,
    autoRenew: true,
    waitReplicas: { replicas: 1 },
  });
  assert.deepEqual(ok.options, {
    ttlMs: 2000,
    blocking: false,
    maxWaitMs: Infinity,
    retryIntervalMs: 50,
    autoRenew: true,
    waitReplicas: { replicas: 1, timeoutMs: 1000 },
  });
  assert.deepEqual(await redis.keys(`${keys.space.prefix}:*`), [], 'nothing reached Redis');
  await assert.rejects(fencedSet(redis, `${keys.space.prefix}:v1:x`, 1n, 'v', { ttl: 0 }), (err: unknown) => {
    assert.ok(err instanceof OptionsError);
    assert.equal(err.code, 'E_OPTIONS');
    assert.match(err.message, /ttl: 0 is not a positive whole number of ms/);
    return true;
  });
});

test('the signal aborts when validity ends without extend; validity is on the monotonic clock', async () => {
  const { locks } = setup();
  const long = await locks.acquire('valid-long', { ttl: 600_000 });
  assert.ok(
    long.validityMs > 0 && long.validityMs <= 600_000 - driftMs(600_000),
    `validity ${long.validityMs} ms: ttl less drift, less time spent`,
  );
  await long.release();

  const t0 = performance.now();
  const a = await locks.acquire('valid', { ttl: 200 });
  let abortedAt = 0;
  a.signal.addEventListener('abort', () => (abortedAt = performance.now()));
  await aborted(a.signal);
  // Not before the validity (ttl less drift, counted from before the acquire was sent) has ended; the
  // 1 ms is libuv's timer granularity (its loop clock is in whole ms). No upper bound on a loaded machine:
  // the abort comes from a timer, waited for here.
  const after = abortedAt - t0;
  assert.ok(after >= 200 - driftMs(200) - 1, `aborted ${after} ms after the acquire was sent`);
  const lost: unknown = a.signal.reason;
  assert.ok(lost instanceof LockLostError);
  assert.match(lost.message, /validity ended/);
  assert.equal(a.held, false);
  assert.equal(a.validityMs, 0);
  // Lost locally: release reports it, whether or not Redis has expired the key yet.
  await assert.rejects(a.release(), (err: unknown) => err === lost);
});

test(
  'auto-renew keeps the lock past its TTL and aborts the signal the moment it is lost',
  { skip: onCluster && 'single server only: watches keyspace events of one server' },
  async () => {
    const { locks, redis, keys } = setup();
    const key = keys.lock.key({ name: 'renew' });
    const events = await watchKey(server(), key);
    try {
      // ttl 1500 renews every 500 ms and leaves ~1 s for a renewal to land late before the lock's
      // validity ends: room for a loaded machine (600 ms left 400 ms, and flaked).
      const a = await locks.acquire('renew', { ttl: 1500, autoRenew: true });
      // Each renewal is a PEXPIRE (an "expire" event; the acquisition made one too). Four renewals,
      // each at least ttl/3 after the previous, mean more than the ttl has passed since the acquisition.
      await events.reach('expire', 1 + 4);
      assert.equal(await a.isOwned(), true, 'still owned after more than its ttl');
      assert.equal(a.signal.aborted, false);
      await redis.del(key); // someone broke it
      await aborted(a.signal);
      // Noticed by the next renewal (its reason), not by the end of validity (that reason is
      // "its validity ended"): so before the ttl was up.
      assert.match((a.signal.reason as Error).message, /extend found it expired or taken/);
      assert.equal(await redis.exists(key), 0, 'the renewal did not re-create it');
      await assert.rejects(a.release(), LockLostError);
    } finally {
      events.close();
    }
  },
);

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
    locks.withLock('scoped', (lock) => aborted(lock.signal), { ttl: 50 }),
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

test(
  'WAIT for replicas: acquires with enough replicas; otherwise releases and says so',
  {
    skip:
      onCluster &&
      'single server only: starts a replica of the one server (test/cluster/locks.test.ts covers WAIT on a cluster)',
  },
  async () => {
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
      // WAIT returns as soon as the replica acknowledges; 10 s only bounds a loaded machine.
      const ok = new Lock(redis, keys, 'repl', { waitReplicas: { replicas: 1, timeout: 10_000 } });
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
  },
);

// The two tests below stop and restart the file's server: keep them last.

test(
  'Redis restarted without persistence: the next token is still greater',
  { skip: onCluster && 'single server only: restarts the one server' },
  async () => {
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
  },
);

test(
  'Redis down: a clear LockTimeoutError within maxWait, no hang; no lock left behind later',
  { skip: onCluster && 'single server only: stops the one server' },
  async () => {
    const { keys } = setup();
    // Two kinds of connection: one that queues commands while offline, one that fails them fast.
    const queueing = server().client();
    const failing = new Redis(server().port, '127.0.0.1', {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 50,
    });
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
        // Given up on maxWait's account: without the bound the queueing connection would wait for ever
        // and the default maxWait is 10 s; 5 s is far from both and leaves room for a loaded machine.
        assert.ok(took < 5000, `gave up after ${took} ms (maxWait 300 ms)`);
      }
    } finally {
      await server().restart();
    }
    await until(() => queueing.status === 'ready', 5000, 'reconnect');
    await until(
      async () => (await queueing.exists(keys.lock.key({ name: 'down' }))) === 0,
      10_000, // a stray lock would live its 30 s ttl
      'no stray lock',
    );
    failing.disconnect();
  },
);
