// Fault 10.13: a worker that does not know a task name dead-letters it at once.
//
// During a rolling deploy, old workers run next to new ones; a task defined only in the new release
// is enqueued by new producers, and whichever worker reads it first decides its fate. An old worker
// dead-letters it (reason unknown-task) although a new worker would have run it.
//
// Expected (default): a worker that does not know a task leaves it for other workers, for a while,
// and dead-letters it (reason unknown-task) only when no worker has run it within a bound. A task an
// old worker saw first is run once by a newer worker that knows it (after claimIdle at the latest);
// no dead letter, however the old and new workers' reclaimers race for it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { capturingLogger, outcomes } from './support.js';

const server = useRedis();

test('an unknown task seen by an old worker is run by a newer worker that knows it', async () => {
  const prefix = randomPrefix();
  // The old release: no "report.v2" task.
  const oldApp = newApp(server(), { prefix });
  oldApp.task({ name: 'report', schema: z.object({}), handler: () => 'v1' });
  // The new release adds it.
  const nextApp = newApp(server(), { prefix });
  nextApp.task({ name: 'report', schema: z.object({}), handler: () => 'v1' });
  let runs = 0;
  const v2 = nextApp.task({
    name: 'report.v2',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => {
      runs++;
      return n * 2;
    },
  });
  const old = capturingLogger();
  const claims = { claimIdle: 500, reclaimInterval: 100, promoteIntervalMs: 20 };
  const oldWorker = new Worker(oldApp, { logger: old.logger, ...claims });
  await oldWorker.start();
  const h = await v2.enqueue({ n: 21 });
  // The old worker has read it: it says something about this task.
  await until(() => old.lines.some((l) => l.taskId === h.id), 5000, 'the old worker to see the task');
  const newWorker = new Worker(nextApp, { logger: capturingLogger().logger, ...claims });
  await newWorker.start();
  assert.equal(await h.result({ timeout: '10s' }), 42);
  assert.equal(runs, 1);
  assert.equal(await oldApp.deadLetters.count('default'), 0, 'not dead-lettered');
  assert.equal(oldWorker.counts.failed, 0);
  assert.deepEqual(outcomes(newWorker), { succeeded: 1, failed: 0, retried: 0, expired: 0 });
  await Promise.all([oldWorker.stop(), newWorker.stop()]);
});
