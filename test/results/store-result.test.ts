import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { TestRedis } from '../../src/testing/index.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

/** Every key of an app's prefix, by the family of its name (`r` for result keys). */
async function keysOf(redis: TestRedis, app: Tasuki): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis
      .client()
      .scan(cursor, 'MATCH', `${app.keys.space.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found.sort();
}

const resultKeys = (keys: string[]): string[] => keys.filter((k) => k.includes(':r:'));

test('storeResult: false — 500 tasks run, every waiter gets its result, no result key is left', async () => {
  const app = newApp(server());
  const t = app.task({
    name: 'double',
    schema: z.object({ n: z.number() }),
    storeResult: false,
    handler: ({ n }) => n * 2,
  });
  const handles = await Promise.all(Array.from({ length: 500 }, (_, n) => t.enqueue({ n })));
  const worker = new Worker(app, { logger: silentLogger(), concurrency: 20 });
  await worker.start();
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '60s' })));
  assert.deepEqual(
    results,
    handles.map((_, n) => n * 2),
  );
  await until(() => worker.holding === 0, 30_000, 'every outcome recorded');
  assert.equal(worker.counts.succeeded, 500);
  await worker.stop();
  const keys = await keysOf(server(), app);
  assert.deepEqual(resultKeys(keys), []);
  // What is left: the (empty) stream and its moves mark, the capped completion events, the set of
  // queue names.
  assert.deepEqual(
    keys,
    [
      app.keys.queues.key({}),
      app.keys.events.key({ queue: 'default' }),
      app.keys.stream.key({ queue: 'default' }),
      app.keys.moves.key({ queue: 'default' }),
    ].sort(),
  );
  assert.equal(
    await server()
      .client()
      .xlen(app.keys.stream.key({ queue: 'default' })),
    0,
  );
  // A finished task that kept no record is not known by id any more.
  assert.equal(await app.getTask(handles[0]!.id), null);
});

test('a waiter that starts after the task finished still gets the result (from the completion stream)', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'late', schema: z.object({}), storeResult: false, handler: () => 'done late' });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const h = await t.enqueue({});
  await until(() => worker.counts.succeeded === 1 && worker.holding === 0, 30_000, 'the task finished');
  assert.deepEqual(resultKeys(await keysOf(server(), app)), []);
  assert.equal(await h.result({ timeout: '10s' }), 'done late');
  await worker.stop();
});

test('the enqueue option overrides the definition, both ways', async () => {
  const app = newApp(server());
  const kept = app.task({ name: 'kept', schema: z.object({}), handler: () => 'k' });
  const dropped = app.task({ name: 'dropped', schema: z.object({}), storeResult: false, handler: () => 'd' });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const a = await kept.enqueue({}, { storeResult: false });
  const b = await dropped.enqueue({}, { storeResult: true });
  const c = await kept.enqueue({});
  assert.equal(await a.result({ timeout: '30s' }), 'k');
  assert.equal(await b.result({ timeout: '30s' }), 'd');
  assert.equal(await c.result({ timeout: '30s' }), 'k');
  await until(() => worker.holding === 0, 30_000, 'every outcome recorded');
  await worker.stop();
  assert.equal(await app.getTask(a.id), null);
  assert.equal((await app.getTask(b.id))?.state, 'succeeded');
  assert.equal((await app.getTask(c.id))?.state, 'succeeded');
  await assert.rejects(() => kept.enqueue({}, { storeResult: 'no' as unknown as boolean }), {
    code: 'E_OPTIONS',
    message: /storeResult: must be true or false/,
  });
});

test('storeResult: false still keeps the record of a task that failed (it says why), and retries it', async () => {
  const app = newApp(server());
  let calls = 0;
  const t = app.task({
    name: 'flaky',
    schema: z.object({}),
    storeResult: false,
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 10 },
    handler: () => {
      calls++;
      throw new Error(`boom ${calls}`);
    },
  });
  const worker = new Worker(app, { logger: silentLogger(), promoteIntervalMs: 20 });
  await worker.start();
  const h = await t.enqueue({});
  await assert.rejects(() => h.result({ timeout: '30s' }), { code: 'E_TASK_FAILED', message: /boom 2/ });
  await worker.stop();
  assert.equal(calls, 2);
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'failed');
  assert.equal(info?.error?.message, 'boom 2');
});
