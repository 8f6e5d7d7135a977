import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runCli } from '../support/cli.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('tasuki inspect task and queues: states and counts, read-only', async () => {
  const app = newApp(server(), { queues: ['default', 'mail'] });
  const prefix = app.keys.space.prefix;
  const ok = app.task({ name: 'ok', schema: z.object({}), handler: () => 'fine' });
  const bad = app.task({
    name: 'bad',
    queue: 'mail',
    schema: z.object({}),
    handler: () => Promise.reject(new Error('no')),
  });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const done = await ok.enqueue({});
  await done.result({ timeout: '5s' });
  await bad
    .enqueue({})
    .then((h) => h.result({ timeout: '5s' }))
    .catch(() => undefined);
  await worker.stop();
  await ok.enqueueMany([{ args: {} }, { args: {} }, { args: {}, options: { delay: '1h' } }]);

  const env = { REDIS_URL: server().url };
  const task = await runCli(['inspect', 'task', done.id, '--prefix', prefix], env);
  assert.equal(task.code, 0, task.stderr);
  const info = JSON.parse(task.stdout) as { state: string; result: string; task: string };
  assert.deepEqual([info.state, info.result, info.task], ['succeeded', 'fine', 'ok']);

  const queues = await runCli(['inspect', 'queues', '--prefix', prefix, '--json'], env);
  assert.equal(queues.code, 0, queues.stderr);
  assert.deepEqual(JSON.parse(queues.stdout), [
    { queue: 'default', inStream: 2, active: 0, waiting: 2, delayed: 1, dead: 0 },
    { queue: 'mail', inStream: 0, active: 0, waiting: 0, delayed: 0, dead: 1 },
  ]);

  const missing = await runCli(['inspect', 'task', '1-0@default', '--prefix', prefix], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no task 1-0@default: never enqueued under prefix/);
  const malformed = await runCli(['inspect', 'task', 'nonsense', '--prefix', prefix], env);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /"nonsense" is not a tasuki task id/);
});
