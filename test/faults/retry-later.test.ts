// Fault 10.11: `RetryLater` under the default `maxAttempts: 1` dead-letters the task at once.
//
// A handler throws `new RetryLater('rate limited', { delay })` to say "run me again after the delay",
// not "I failed". It counted as an attempt, so with the default of one attempt the task went
// straight to the dead letters and never ran again.
//
// Expected (the rule, as src/task/retry.ts documents it): RetryLater runs the task again after the
// delay, whatever its retry policy. A task that sets no `maxAttempts` gets up to 25 attempts in all
// (RETRY_LATER_MAX_ATTEMPTS) through RetryLater; one that sets `maxAttempts` gets that many. Past the
// bound: the dead letters, reason max-attempts, with the RetryLater as the error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { RetryLater, TaskFailedError, Worker } from '../../src/index.js';
import { RETRY_LATER_MAX_ATTEMPTS } from '../../src/task/retry.js';
import { newApp, useRedis } from '../support/redis.js';
import { capturingLogger, outcomes } from './support.js';

const server = useRedis();
const opts = () => ({ logger: capturingLogger().logger, promoteIntervalMs: 10 });

test('RetryLater with the default maxAttempts (1) runs the task again after the delay', async () => {
  const app = newApp(server());
  const runs: number[] = [];
  const t = app.task({
    name: 'later',
    schema: z.object({}),
    handler: (_args, ctx) => {
      runs.push(Date.now());
      if (ctx.attempt < 3) throw new RetryLater('rate limited', { delay: 100 });
      return ctx.attempt;
    },
  });
  const w = new Worker(app, opts());
  await w.start();
  const h = await t.enqueue({});
  assert.equal(await h.result({ timeout: '5s' }), 3);
  await w.stop();
  assert.equal(runs.length, 3);
  for (let i = 1; i < runs.length; i++) {
    const gap = (runs[i] as number) - (runs[i - 1] as number);
    assert.ok(gap >= 100, `run ${i + 1} came ${gap} ms after the one before, not after the 100 ms delay`);
  }
  assert.deepEqual(outcomes(w), { succeeded: 1, failed: 0, retried: 2, expired: 0 });
  assert.equal(await app.deadLetters.count('default'), 0);
});

test('RetryLater is bounded: with no maxAttempts, 25 attempts in all, then the dead letters', async () => {
  const app = newApp(server());
  let runs = 0;
  const t = app.task({
    name: 'forever',
    schema: z.object({}),
    handler: () => {
      runs++;
      throw new RetryLater('still busy', { delay: 5 });
    },
  });
  const w = new Worker(app, opts());
  await w.start();
  const h = await t.enqueue({});
  await assert.rejects(h.result({ timeout: '20s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.remote.name, 'RetryLater');
    assert.equal(err.remote.message, 'still busy');
    return true;
  });
  await w.stop();
  assert.equal(runs, RETRY_LATER_MAX_ATTEMPTS);
  assert.equal(RETRY_LATER_MAX_ATTEMPTS, 25);
  assert.deepEqual(outcomes(w), { succeeded: 0, failed: 1, retried: 24, expired: 0 });
  const dead = await app.deadLetters.get('default', h.id);
  assert.equal(dead?.reason, 'max-attempts');
  assert.equal(dead?.attempts, 25);
});

test('with maxAttempts set, RetryLater runs within it and not-retryable errors still end it', async () => {
  class Fatal extends Error {}
  const app = newApp(server());
  let runs = 0;
  const t = app.task({
    name: 'bounded',
    schema: z.object({ fatal: z.boolean() }),
    maxAttempts: 3,
    retryOn: [Fatal], // RetryLater retries even though retryOn does not list it
    handler: ({ fatal }, ctx) => {
      runs++;
      if (fatal && ctx.attempt === 2) throw new TypeError('broken');
      throw new RetryLater('not yet', { delay: 5 });
    },
  });
  const w = new Worker(app, opts());
  await w.start();
  await assert.rejects((await t.enqueue({ fatal: false })).result({ timeout: '5s' }), /not yet/);
  assert.equal(runs, 3, 'maxAttempts attempts');
  runs = 0;
  const fatal = await t.enqueue({ fatal: true });
  await assert.rejects(fatal.result({ timeout: '5s' }), /broken/);
  assert.equal(runs, 2);
  assert.equal((await app.deadLetters.get('default', fatal.id))?.reason, 'not-retryable');
  await w.stop();
});
