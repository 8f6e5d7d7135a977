import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test("app.locks() makes fenced locks on the app's Redis and prefix", async () => {
  const app = newApp(server());
  const locks = await app.locks({ ttl: '5s' });
  const first = await locks.withLock('report', (lock) => lock.token);
  const second = await locks.withLock('report', (lock) => lock.token);
  assert.equal(typeof first, 'bigint');
  assert.ok(second > first);
  const keys = await server().client().keys(`${app.keys.space.prefix}:*`);
  assert.ok(
    keys.every((k) => k.startsWith(`${app.keys.space.prefix}:v`)),
    keys.join(', '),
  );
});
