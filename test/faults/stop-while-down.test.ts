// A worker stopped while Redis does not answer must still stop: every wait on Redis at shutdown is
// bounded, so a SIGTERM during an outage ends the process instead of hanging until it is killed
// (test runs left such workers behind before).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

test('a worker stops within its bounds while Redis is down, running and unstarted tasks included', async () => {
  const app = newApp(server());
  let started = 0;
  const t = app.task({
    name: 'slow',
    schema: z.object({}),
    handler: async (_args, ctx) => {
      started++;
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    },
  });
  await t.enqueueMany([{ args: {} }, { args: {} }, { args: {} }]);
  const worker = new Worker(app, { logger: silentLogger(), concurrency: 1, grace: '500ms' });
  await worker.start();
  await until(() => started === 1, 20_000, 'the first task to start');
  await server().stop({ kill: true });
  const begun = Date.now();
  try {
    await worker.stop();
    const took = Date.now() - begun;
    // Grace 0.5 s, then at most a few bounded waits (5 s each, the completer 10 s): well under a minute.
    assert.ok(took < 40_000, `stopped after ${took} ms`);
  } finally {
    await server().server.start();
  }
});
