import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { defineKeyspace, TasukiError } from '../../src/index.js';
import { finished } from '../support/cli.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';

const server = useRedis();
const WORKER = fileURLToPath(new URL('./fixtures/stampede-worker.ts', import.meta.url));

test('getOrSet: many processes miss at once, one computes, all get its value', async () => {
  const prefix = randomPrefix();
  const n = 6;
  const children = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, REDIS_URL: server().url, TASUKI_TEST_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const runs = children.map((c) => finished(c));
  const control = server().client();
  // Every process is connected and waiting: then they all start at once.
  for (let i = 0; i < n; i++) await control.blpop(`${prefix}:test:ready`, 0);
  await control.rpush(`${prefix}:test:go`, ...Array.from({ length: n }, () => '1'));
  const done = await Promise.all(runs);
  for (const r of done) assert.equal(r.code, 0, r.stderr);
  assert.equal(await control.get(`${prefix}:test:computations`), '1', 'one computation across processes');
  const values = new Set(done.map((r) => r.stdout.trim()));
  assert.equal(values.size, 1, `every process got the same value: ${[...values].join(' ')}`);
});

test("getOrSet: a waiter's wait is bounded — it takes over when the holder is gone, or falls back", async () => {
  const app = newApp(server());
  const schema = z.object({ by: z.string() });
  const ks = defineKeyspace(app, {
    owner: 'o',
    name: 'slow',
    version: 1,
    ttl: '1m',
    schema,
    getOrSet: { wait: 200, lockTtl: 60_000 },
  });
  // A holder that never finishes (a stuck process): its lock is held, nothing is written.
  const locks = await app.locks();
  const stuck = await locks.acquire('keyspace:slow:k', { ttl: 60_000 });
  const started = Date.now();
  assert.deepEqual(await ks.getOrSet('k', () => ({ by: 'fallback' })), { by: 'fallback' });
  assert.ok(Date.now() - started >= 190, 'waited for the holder first');
  assert.deepEqual(await ks.get('k'), { by: 'fallback' }, 'the fallback wrote its value');
  const strict = defineKeyspace(app, {
    owner: 'o',
    name: 'strict',
    version: 1,
    ttl: '1m',
    schema,
    getOrSet: { wait: 100, fallback: 'error' },
  });
  const stuck2 = await locks.acquire('keyspace:strict:k', { ttl: 60_000 });
  await assert.rejects(
    strict.getOrSet('k', () => ({ by: 'never' })),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_LOCK_TIMEOUT',
  );
  // The holder's lock expires (it died): the next waiter takes over at once and computes.
  await stuck2.release();
  assert.deepEqual(await strict.getOrSet('k', () => ({ by: 'taker' })), { by: 'taker' });
  await stuck.release();
});
