// Fault 8.2: finished tasks re-run when their outcome is held back.
//
// A worker that finishes a task while Redis is unreachable (or refusing writes at maxmemory) keeps the
// outcome in memory and sends it again until Redis takes it. Meanwhile the task's stream entry is
// pending and idle, and once the outage has lasted longer than `claimIdle` another worker takes it
// over and runs it again, although the task is done.
//
// Expected: a task that finished during the outage is not run again by any worker after Redis returns:
// zero re-runs. This file: Redis at maxmemory. Redis down: outcome-held-back-outage.pending.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { capturingLogger, fillUntilOom, liftOom, quiet } from './support.js';

const server = useRedis({ appendonly: true });

test('Redis at maxmemory longer than claimIdle: a task that finished meanwhile is not run again', async () => {
  const prefix = randomPrefix();
  const redis = server().client();
  const app = newApp(server(), { prefix });
  let runs = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const task = app.task({
    name: 'once',
    schema: z.object({}),
    handler: async () => {
      runs++;
      await gate;
      return 'done';
    },
  });
  const opts = { logger: capturingLogger().logger, claimIdle: 1000, reclaimInterval: 100, concurrency: 1 };
  const a = new Worker(app, opts);
  await a.start();
  const h = await task.enqueue({});
  await until(() => runs === 1, 5000, 'worker A to start the task');
  const b = new Worker(app, opts);
  await b.start();
  try {
    await fillUntilOom(redis, prefix);
    open(); // finishes at OOM
    await quiet(3000); // 3 x claimIdle at OOM
    assert.equal(runs, 1, 'not run again while its outcome waits for Redis to take it');
    await liftOom(redis);
    assert.equal(await h.result({ timeout: '5s' }), 'done');
    await quiet(1000);
    assert.equal(runs, 1);
    assert.equal(b.counts.succeeded, 0, 'worker B ran nothing');
  } finally {
    await liftOom(redis);
    await Promise.all([a.stop(), b.stop()]);
  }
});
