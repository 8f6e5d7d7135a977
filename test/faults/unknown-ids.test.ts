// Fault 10.5: waiting on a task id that was never enqueued (or whose queue the app does not declare)
// waited the whole timeout, or forever without one.
//
// Expected: `result()` rejects at once: E_NOT_FOUND when Redis knows nothing of the id (never
// enqueued, or finished longer ago than resultTtl), E_UNKNOWN_QUEUE when its queue is not one of the
// app's. Ids of tasks that exist (queued, delayed, retrying, done) wait or resolve as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TasukiError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

function code(c: string, message: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TasukiError, String(err));
    assert.equal(err.code, c);
    assert.match(err.message, message);
    return true;
  };
}

test(
  'waiting on an id that was never enqueued rejects at once with E_NOT_FOUND',
  { timeout: 10_000 },
  async () => {
    const app = newApp(server());
    for (const wait of [
      () => app.waitForResult('1-0@default'),
      () => app.waitForResult('1732391234567-0@default', { timeout: '1h' }),
      () => app.waitForResult('1732391234567-dabc@default', { timeout: '1h' }),
    ]) {
      const started = Date.now();
      await assert.rejects(wait(), code('E_NOT_FOUND', /no task "1.*@default": never enqueued, or/));
      assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`);
    }
  },
);

test(
  'waiting on an id of a queue the app does not declare rejects at once with E_UNKNOWN_QUEUE',
  { timeout: 10_000 },
  async () => {
    const app = newApp(server());
    const started = Date.now();
    await assert.rejects(
      app.waitForResult('1-0@elsewhere'),
      code('E_UNKNOWN_QUEUE', /unknown queue "elsewhere"/),
    );
    assert.ok(Date.now() - started < 500);
  },
);

test(
  'ids of tasks that exist still wait: queued, delayed, retrying; finished ones resolve',
  { timeout: 10_000 },
  async () => {
    const app = newApp(server());
    let failFirst = true;
    const t = app.task({
      name: 'work',
      schema: z.object({ n: z.number() }),
      maxAttempts: 2,
      backoff: { type: 'fixed', delay: 300 },
      handler: ({ n }) => {
        if (n === 3 && failFirst) {
          failFirst = false;
          throw new Error('once');
        }
        return n;
      },
    });
    const queued = await t.enqueue({ n: 1 });
    const delayed = await t.enqueue({ n: 2 }, { delay: 300 });
    const retried = await t.enqueue({ n: 3 });
    const waits = [queued, delayed, retried].map((h) => h.result({ timeout: '10s' }));
    const w = new Worker(app, { logger: silentLogger(), promoteIntervalMs: 20 });
    await w.start();
    assert.deepEqual(await Promise.all(waits), [1, 2, 3]);
    assert.equal(await queued.result({ timeout: '1s' }), 1, 'a finished task resolves at once');
    await w.stop();
  },
);
