// Fault 8.1: at maxmemory a worker records nothing, so nothing drains.
//
// Expected: Redis at maxmemory (noeviction) refuses commands that may grow memory, but a worker's own
// work frees memory (acknowledging and deleting stream entries, removing promoted members from the
// delayed set). A worker must keep draining its queues at OOM: every waiting task runs exactly once,
// its outcome is recorded, the stream empties. A worker started at OOM starts when its consumer
// group already exists, and due delayed tasks are promoted and run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { capturingLogger, fillUntilOom, liftOom, quiet, outcomes } from './support.js';

const server = useRedis({ args: ['--maxmemory-policy', 'noeviction'] });

function countingApp(prefix: string) {
  const app = newApp(server(), { prefix });
  const runs = new Map<number, number>();
  const task = app.task({
    name: 'count',
    schema: z.object({ i: z.number().int() }),
    handler: ({ i }) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      return i;
    },
  });
  return { app, runs, task };
}

test('at maxmemory, a running worker drains the waiting tasks: each runs once, is recorded, the stream empties', async () => {
  const redis = server().client();
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const runs = new Map<number, number>();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const task = app.task({
    name: 'count',
    schema: z.object({ i: z.number().int() }),
    handler: async ({ i }) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      await gate;
      return i;
    },
  });
  const worker = new Worker(app, {
    logger: capturingLogger().logger,
    claimIdle: '1s',
    concurrency: 2,
    prefetch: 0,
  });
  await worker.start();
  const N = 10;
  const handles = await task.enqueueMany(Array.from({ length: N }, (_, i) => ({ args: { i } })));
  await until(() => runs.size === 2, 5000, 'two tasks to start');
  try {
    await fillUntilOom(redis, prefix);
    open(); // two tasks finish at OOM; eight still wait in the stream
    const results = await Promise.all(handles.map((h) => h.result({ timeout: '10s' })));
    assert.deepEqual(
      results,
      Array.from({ length: N }, (_, i) => i),
    );
    const stream = app.keys.stream.key({ queue: 'default' });
    await until(async () => (await redis.xlen(stream)) === 0, 5000, 'the stream to empty');
    await quiet(2500); // > 2 x claimIdle: nothing is taken over and run again
    assert.deepEqual(
      [...runs.entries()].sort(([a], [b]) => a - b),
      Array.from({ length: N }, (_, i) => [i, 1]),
      'each task ran exactly once',
    );
    assert.deepEqual(outcomes(worker), { succeeded: N, failed: 0, retried: 0, expired: 0 });
    await worker.stop();
  } finally {
    await liftOom(redis);
  }
});

test('at maxmemory, a worker starts when its consumer group exists, and drains the queue', async () => {
  const redis = server().client();
  const prefix = randomPrefix();
  const { app, runs, task } = countingApp(prefix);
  const { logger } = capturingLogger();
  // A worker that served the queue before: the consumer group and the queue registry exist.
  const before = new Worker(app, { logger });
  await before.start();
  await before.stop();
  const N = 20;
  const handles = await task.enqueueMany(Array.from({ length: N }, (_, i) => ({ args: { i } })));
  try {
    await fillUntilOom(redis, prefix);
    const worker = new Worker(app, { logger, claimIdle: '1s', concurrency: 5 });
    await worker.start();
    const results = await Promise.all(handles.map((h) => h.result({ timeout: '10s' })));
    assert.deepEqual(
      results,
      Array.from({ length: N }, (_, i) => i),
    );
    await until(
      async () => (await redis.xlen(app.keys.stream.key({ queue: 'default' }))) === 0,
      5000,
      'the stream to empty',
    );
    assert.deepEqual(
      [...runs.entries()].sort(([a], [b]) => a - b),
      Array.from({ length: N }, (_, i) => [i, 1]),
      'each task ran exactly once',
    );
    assert.deepEqual(outcomes(worker), { succeeded: N, failed: 0, retried: 0, expired: 0 });
    await worker.stop();
  } finally {
    await liftOom(redis);
  }
});

test('at maxmemory, a worker started before OOM promotes due delayed tasks and runs them once', async () => {
  const redis = server().client();
  const prefix = randomPrefix();
  const { app, runs, task } = countingApp(prefix);
  const { logger } = capturingLogger();
  const worker = new Worker(app, { logger, claimIdle: '1s', promoteIntervalMs: 20 });
  await worker.start();
  const handles = await task.enqueueMany(
    Array.from({ length: 5 }, (_, i) => ({ args: { i }, options: { delay: 1500 } })),
  );
  try {
    await fillUntilOom(redis, prefix);
    const results = await Promise.all(handles.map((h) => h.result({ timeout: '10s' })));
    assert.deepEqual(results, [0, 1, 2, 3, 4]);
    assert.equal(await redis.zcard(app.keys.delayed.key({ queue: 'default' })), 0, 'delayed set empty');
    assert.equal(await redis.xlen(app.keys.stream.key({ queue: 'default' })), 0, 'stream empty');
    assert.deepEqual(
      [...runs.entries()].sort(([a], [b]) => a - b),
      [0, 1, 2, 3, 4].map((i) => [i, 1]),
    );
    await worker.stop();
  } finally {
    await liftOom(redis);
  }
});
