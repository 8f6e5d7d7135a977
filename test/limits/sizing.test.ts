// Sizing figures for docs/memory.md, measured on a real redis-server: Redis memory per waiting task,
// per stored result (and per task that stores none), per dead letter and per rate-limit key. Each is asserted against a bound, so
// the figures the docs quote cannot drift far without a failing test. Run with --test-reporter=spec
// to see the figures (t.diagnostic).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { RateLimiter } from '../../src/limits/rate-limiter.js';
import { compileRateLimits } from '../../src/limits/rate.js';
import { registerScripts } from '../../src/scripts/catalogue.js';
import { capturingLogger } from '../faults/support.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();
const N = 2000;

async function used(redis: ReturnType<ReturnType<typeof server>['client']>): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

test('memory per waiting task, per result, per dead letter, per rate-limit key', async (t) => {
  const redis = server().client();
  const app = newApp(server(), { queues: ['default'], memoryGuard: false });
  // Arguments of a typical small task: an id and a hash, about 100 bytes of JSON (a claim check).
  const args = { upload: 'u_0123456789', sha256: 'a'.repeat(64) };
  const ok = app.task({
    name: 'upload.process',
    schema: z.object({ upload: z.string(), sha256: z.string() }),
    handler: () => 'done',
  });
  const bad = app.task({
    name: 'upload.fail',
    schema: z.object({ upload: z.string(), sha256: z.string() }),
    handler: () => {
      throw new Error('cannot process this upload');
    },
  });
  const quiet = app.task({
    name: 'upload.quiet',
    schema: z.object({ upload: z.string(), sha256: z.string() }),
    storeResult: false,
    handler: () => 'done',
  });
  await app.redis();
  const start = await used(redis);
  const waiting = await ok.enqueueMany(Array.from({ length: N }, () => ({ args })));
  const perWaiting = ((await used(redis)) - start) / N;

  const worker = new Worker(app, { concurrency: 50, logger: capturingLogger().logger });
  await worker.start();
  await Promise.all(waiting.map((h) => h.result({ timeout: '60s' })));
  // Finished: the entries are gone; what stays is one result record per task (for resultTtl).
  const perResult = ((await used(redis)) - start) / N;

  // storeResult: false: no record; what stays is the task's share of the completion events (capped).
  const beforeQuiet = await used(redis);
  const quietOnes = await quiet.enqueueMany(Array.from({ length: N }, () => ({ args })));
  await Promise.all(quietOnes.map((h) => h.result({ timeout: '60s' })));
  const perQuiet = ((await used(redis)) - beforeQuiet) / N;

  const before = await used(redis);
  const failing = await bad.enqueueMany(Array.from({ length: N }, () => ({ args })));
  await Promise.all(failing.map((h) => h.result({ timeout: '60s' }).catch(() => undefined)));
  await worker.stop();
  // A failed task leaves a (bigger) record with its error, and a dead letter carrying the message.
  const perFailed = ((await used(redis)) - before) / N;

  const limiter = new RateLimiter(await app.redis(), app.keys);
  registerScripts(await app.redis());
  const limits = compileRateLimits({ rate: '10/s', key: (a) => (a as { c: string }).c }) ?? [];
  const beforeLimits = await used(redis);
  for (let i = 0; i < N; i++)
    await limiter.reserve(limiter.limitKeys('upload.process', limits, { c: `customer-${i}` }), limits);
  const perLimitKey = ((await used(redis)) - beforeLimits) / N;

  t.diagnostic(
    `bytes per waiting task ${perWaiting.toFixed(0)}, per succeeded result ${perResult.toFixed(0)}, ` +
      `per succeeded task with storeResult: false ${perQuiet.toFixed(0)}, ` +
      `per failed task (record + dead letter) ${perFailed.toFixed(0)}, per rate-limit key ${perLimitKey.toFixed(0)}`,
  );
  assert.ok(perWaiting < 300, `waiting task: ${perWaiting} bytes`);
  assert.ok(perResult < 1000, `result: ${perResult} bytes`);
  assert.ok(perQuiet < 300, `succeeded with storeResult: false: ${perQuiet} bytes`);
  assert.ok(perFailed < 3000, `failed task: ${perFailed} bytes`);
  assert.ok(perLimitKey < 256, `rate-limit key: ${perLimitKey} bytes`);
});
