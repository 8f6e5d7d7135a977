// Workers keep draining at OOM (issue 11, point 3): at maxmemory (noeviction) a worker still records
// what its tasks became — retries parked in the delayed set, dead letters appended, rate-limited
// tasks held back until their slot and then run — because every worker script writes first what
// frees memory (XACK/XDEL in finish.lua) or is flagged allow-oom (rate_limit.lua, fixed-size state).
// test/faults/oom-worker.test.ts has plain tasks, a worker started at OOM, and promotion.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TaskFailedError, Worker } from '../../src/index.js';
import { capturingLogger, fillUntilOom, liftOom } from '../faults/support.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis({ args: ['--maxmemory-policy', 'noeviction'] });

test('at maxmemory a worker records retries, dead letters and rate-limited tasks, and drains the queue', async () => {
  const redis = server().client();
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix, memoryGuard: false });
  const tries = new Map<number, number>();
  const flaky = app.task({
    name: 'flaky',
    schema: z.object({ i: z.number() }),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 50, jitter: false },
    handler: ({ i }) => {
      const n = (tries.get(i) ?? 0) + 1;
      tries.set(i, n);
      if (n === 1) throw new Error('first attempt fails');
      return i;
    },
  });
  const doomed = app.task({
    name: 'doomed',
    schema: z.object({}),
    handler: () => {
      throw new Error('always fails');
    },
  });
  const limited = app.task({
    name: 'limited',
    schema: z.object({ i: z.number() }),
    rateLimit: '20/s',
    handler: ({ i }) => i,
  });
  const { logger } = capturingLogger();
  // A worker served the queue before: its consumer group exists (a worker needs it to start at OOM).
  const before = new Worker(app, { logger });
  await before.start();
  await before.stop();
  const flakyHandles = await flaky.enqueueMany([0, 1, 2].map((i) => ({ args: { i } })));
  const doomedHandle = await doomed.enqueue({});
  const limitedHandles = await limited.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ args: { i } })));
  await fillUntilOom(redis, prefix);
  const worker = new Worker(app, { logger, claimIdle: '1s', promoteIntervalMs: 50 });
  try {
    await worker.start();
    assert.deepEqual(await Promise.all(flakyHandles.map((h) => h.result({ timeout: '15s' }))), [0, 1, 2]);
    assert.deepEqual(
      await Promise.all(limitedHandles.map((h) => h.result({ timeout: '15s' }))),
      Array.from({ length: 10 }, (_, i) => i),
    );
    await assert.rejects(doomedHandle.result({ timeout: '15s' }), TaskFailedError);
    const stream = app.keys.stream.key({ queue: 'default' });
    await until(async () => (await redis.xlen(stream)) === 0, 5000, 'the stream to empty');
    assert.equal(await redis.zcard(app.keys.delayed.key({ queue: 'default' })), 0);
    assert.equal(
      await redis.xlen(app.keys.dead.key({ queue: 'default' })),
      1,
      'the dead letter was appended',
    );
    assert.equal(worker.counts.retried, 3);
    assert.ok(worker.counts.limited > 0, 'some limited tasks were held back and run later');
    for (const h of limitedHandles) assert.equal((await h.info())?.attempt, 1);
    // Redis is still full: the drain happened at OOM.
    await assert.rejects(redis.set(`${prefix}:probe`, 'x'.repeat(1024)), /OOM/);
  } finally {
    await worker.stop();
    await liftOom(redis);
  }
});
