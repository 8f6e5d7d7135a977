import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test("app.locks() makes fenced locks on the app's Redis and prefix", async () => {
  const app = newApp(server());
  const redis = server().client();
  const prefix = app.keys.space.prefix;
  const owner = app.keys.lock.key({ name: 'report' });
  const fence = app.keys.lockFence.key({ name: 'report' });
  assert.equal(owner, `${prefix}:v1:{lock:report}`);
  assert.equal(fence, `${prefix}:v1:{lock:report}:fence`);
  const locks = await app.locks({ ttl: '5s' });
  const first = await locks.withLock('report', async (lock) => {
    // While held: the owner key (with the lock's ttl) and the fence counter, nothing else.
    assert.deepEqual((await redis.keys(`${prefix}:*`)).sort(), [owner, fence]);
    const pttl = await redis.pttl(owner);
    assert.ok(pttl > 0 && pttl <= 5000, `the app's default ttl is on the key, got ${pttl}`);
    return lock.token;
  });
  const second = await locks.withLock('report', (lock) => lock.token);
  assert.equal(typeof first, 'bigint');
  assert.ok(second > first);
  // Released: only the fence counter stays (it must outlive holders so tokens keep rising).
  assert.deepEqual(await redis.keys(`${prefix}:*`), [fence]);
  assert.equal(await redis.get(fence), second.toString());
});
