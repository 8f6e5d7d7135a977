// Fault 10.1: a handler that returned something JSON cannot hold ({ n: 10n }, a circular object) was
// logged and counted as succeeded, while its stored record said failed; no retry policy applied and
// no dead letter was written.
//
// Expected: such a return takes the same path as a thrown error: the attempt fails (code E_RESULT,
// "the handler's result cannot be stored as JSON (...)"), the retry policy applies (retried while
// attempts remain), and after the last attempt the task is dead-lettered with reason max-attempts.
// The worker's counts, its log lines and the stored record agree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TaskFailedError, Worker } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';
import { capturingLogger, outcomes } from './support.js';

const server = useRedis();

test('a result JSON cannot hold fails the attempt: retried, then dead-lettered; counts, logs and record agree', async () => {
  const app = newApp(server());
  let runs = 0;
  const t = app.task({
    name: 'bigint',
    schema: z.object({}),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 10 },
    handler: () => {
      runs++;
      return { n: 10n };
    },
  });
  const { logger, lines } = capturingLogger();
  const w = new Worker(app, { logger, promoteIntervalMs: 10 });
  await w.start();
  const h = await t.enqueue({});
  await assert.rejects(h.result({ timeout: '5s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.remote.code, 'E_RESULT');
    assert.match(err.remote.message, /^the handler's result cannot be stored as JSON \(.*BigInt/);
    return true;
  });
  await w.stop();
  assert.equal(runs, 2, 'retried once: maxAttempts 2');
  assert.deepEqual(outcomes(w), { succeeded: 0, failed: 1, retried: 1, expired: 0 });
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'failed');
  assert.equal(info?.attempt, 2);
  assert.equal('result' in (info ?? {}), false);
  const dead = await app.deadLetters.get('default', h.id);
  assert.equal(dead?.reason, 'max-attempts');
  assert.equal(dead?.attempts, 2);
  assert.equal(dead?.error.code, 'E_RESULT');
  const mine = lines.filter((l) => l.taskId === h.id).map((l) => l.msg);
  assert.deepEqual(mine, ['task failed; will retry', 'task failed; moved to dead letters']);
});

test('a circular result with one attempt goes to the dead letters at once, like a thrown error', async () => {
  const app = newApp(server());
  const t = app.task({
    name: 'circular',
    schema: z.object({}),
    handler: () => {
      const o: Record<string, unknown> = { a: 1 };
      o.self = o;
      return o;
    },
  });
  const { logger, lines } = capturingLogger();
  const w = new Worker(app, { logger });
  await w.start();
  const h = await t.enqueue({});
  await assert.rejects(h.result({ timeout: '5s' }), /result cannot be stored as JSON \(.*circular/i);
  await w.stop();
  assert.deepEqual(outcomes(w), { succeeded: 0, failed: 1, retried: 0, expired: 0 });
  assert.equal((await app.getTask(h.id))?.state, 'failed');
  assert.equal((await app.deadLetters.get('default', h.id))?.reason, 'max-attempts');
  assert.equal(await app.deadLetters.count('default'), 1);
  const mine = lines.filter((l) => l.taskId === h.id);
  assert.deepEqual(
    mine.map((l) => [l.level, l.msg]),
    [[50, 'task failed; moved to dead letters']],
  );
});
