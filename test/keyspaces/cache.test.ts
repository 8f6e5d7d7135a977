import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createCache,
  Lock,
  parseEnvelope,
  StaleTokenError,
  TasukiError,
  fencedSet,
} from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('cache facade: get / set / delete / getOrSet / getMany, Django style, each write with a TTL', async () => {
  const app = newApp(server());
  const cache = createCache(app, { owner: 'web', ttl: '5m' });
  const redis = await app.redis();
  assert.equal(await cache.get('page:/'), undefined);
  await cache.set('page:/', { html: '<h1>hi</h1>' });
  assert.deepEqual(await cache.get<{ html: string }>('page:/'), { html: '<h1>hi</h1>' });
  const key = cache.keyspace.key('page:/');
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 290_000 && ttl <= 300_000, `default TTL 5 m, got ${ttl}`);
  await cache.set('short', 1, '2s');
  assert.ok((await redis.pttl(cache.keyspace.key('short'))) <= 2000);
  assert.equal(parseEnvelope((await redis.getBuffer(key)) as Buffer)?.header.owner, 'web');
  let computed = 0;
  const compute = (): number => ++computed;
  assert.equal(await cache.getOrSet('n', compute), 1);
  assert.equal(await cache.getOrSet('n', compute), 1);
  assert.equal(computed, 1);
  assert.deepEqual(await cache.getMany(['n', 'nope']), [1, undefined]);
  assert.equal(await cache.delete('n'), true);
  assert.equal(await cache.get('n'), undefined);
  // Declared in the registry like any key: the cache and its throttle counters.
  assert.ok(app.keyspace.get('cache'));
  assert.ok(app.keyspace.get('cache.throttle'));
});

test('cache.lock(name) is the fenced lock: tokens rise, a stale holder is rejected', async () => {
  const app = newApp(server());
  const cache = createCache(app, { owner: 'web', name: 'pages' });
  const a = await cache.lock('rebuild', { ttl: 200 });
  assert.ok(a instanceof Lock);
  const ta = await a.acquire();
  const b = await cache.lock('rebuild', { maxWait: 5000, retryInterval: 20 });
  const tb = await b.acquire(); // after a's TTL ran out
  assert.ok(tb > ta);
  const redis = await app.redis();
  const target = `${app.keyspace.prefix}:test:fenced`;
  await fencedSet(redis, target, tb, 'from b', { ttl: '1m' });
  await assert.rejects(fencedSet(redis, target, ta, 'from a', { ttl: '1m' }), StaleTokenError);
  await b.release();
});

test('throttle: a bounded, TTL-ed counter per client (the DRF throttle of the incident)', async () => {
  const app = newApp(server());
  const cache = createCache(app, { owner: 'web' });
  const api = cache.throttle('api', '3/m');
  const client = '2001:db8::1 ' + 'x'.repeat(5000); // an IPv6 address with a payload glued on
  const decisions = [];
  for (let i = 0; i < 4; i++) decisions.push(await api.hit(client));
  assert.deepEqual(
    decisions.map((d) => [d.allowed, d.remaining]),
    [
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ],
  );
  assert.ok((decisions[3]?.retryAfterMs ?? 0) > 50_000);
  const key = api.key(client);
  assert.ok(Buffer.byteLength(key) < 100, `bounded key name: ${key}`);
  const redis = await app.redis();
  assert.equal(await redis.get(key), '4');
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 0 && ttl <= 60_000, 'the window is its TTL');
  assert.ok(((await redis.call('MEMORY', 'USAGE', key)) as number) < 128);
  assert.equal((await api.hit('other')).allowed, true, 'per client');
  await api.reset(client);
  assert.equal((await api.hit(client)).allowed, true);
  assert.throws(
    () => cache.throttle('bad', 'lots' as '1/s'),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_OPTIONS' && /"lots"/.test(err.message),
  );
});
