// Fault 8.7 (messages): error messages echo the whole bad input.
//
// A 20 KB queue name (or task name) pasted into an option came back as a 20 KB error message, in
// logs and terminals.
//
// Expected: every error quotes a bounded prefix of the bad value (enough to recognise it) and stays
// short: under 500 characters here, whatever the size of the input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { tasuki, TasukiError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runCli } from '../support/cli.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();
const huge = 'q'.repeat(20_000);

/** What is wrong with the error `run` throws, or `undefined` when it is a short, typed one. */
async function problem(
  what: string,
  run: () => unknown,
  code: string,
  quoted = true,
): Promise<string | undefined> {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof TasukiError)) return `${what}: not a TasukiError (${String(caught).slice(0, 100)})`;
  if (caught.code !== code) return `${what}: code ${caught.code}, expected ${code}`;
  if (caught.message.length >= 500) return `${what}: a ${caught.message.length}-character message`;
  if (quoted && !/qqqqqqqqqq/.test(caught.message)) return `${what}: the bad value is not quoted`;
  return undefined;
}

test('a 20 KB bad value gives a short error message, wherever it is given', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'ok', schema: z.object({}), handler: () => 1 });
  const problems = await Promise.all([
    problem('app queues', () => tasuki({ queues: [huge], logger: silentLogger() }), 'E_CONFIG'),
    problem('app prefix', () => tasuki({ prefix: huge, logger: silentLogger() }), 'E_KEY'),
    problem('task name', () => app.task({ name: huge, schema: z.object({}), handler: () => 1 }), 'E_CONFIG'),
    problem('worker queues', () => new Worker(app, { queues: [huge] }), 'E_UNKNOWN_QUEUE'),
    problem('enqueue queue', () => t.enqueue({}, { queue: huge }), 'E_UNKNOWN_QUEUE'),
    problem('enqueue idempotency key', () => t.enqueue({}, { idempotencyKey: huge }), 'E_OPTIONS', false),
    problem('queueStats', () => app.queueStats(huge), 'E_UNKNOWN_QUEUE'),
    problem('dead letters', () => app.deadLetters.count(huge), 'E_UNKNOWN_QUEUE'),
    problem('task id', () => app.getTask(`1-0@${huge}`), 'E_TASK_ID'),
    problem('result of a task id', () => app.waitForResult(`1-0@${huge}`), 'E_TASK_ID'),
  ]);
  assert.deepEqual(
    problems.filter((p) => p !== undefined),
    [],
  );
});

test('the CLI prints a short error for a 20 KB queue name', async () => {
  const run = await runCli(['worker', '--app', 'test/fixtures/app.ts', '--queues', huge], {
    REDIS_URL: server().url,
  });
  assert.equal(run.code, 2, run.stderr.slice(0, 500));
  assert.ok(run.stderr.length < 500, `${run.stderr.length} characters on stderr`);
  assert.match(run.stderr, /qqqqqqqqqq/);
});
