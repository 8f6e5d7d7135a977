import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alive, finished, spawnCli, waitForOutput } from '../support/cli.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { defineIsolated, QUEUES } from './fixtures/isolated-app.js';

const server = useRedis();

test('tasuki worker --app runs isolated tasks in threads and child processes that load the app module; SIGTERM ends them', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix, queues: QUEUES });
  const threads = defineIsolated(app, 'thread');
  const processes = defineIsolated(app, 'process');
  const child = spawnCli(
    ['worker', '--app', 'test/isolation/fixtures/isolated-app.ts', '--concurrency', '2'],
    {
      REDIS_URL: server().url,
      TEST_PREFIX: prefix,
      TASUKI_LOG_LEVEL: 'info',
    },
  );
  const done = finished(child, 180_000);
  await waitForOutput(child, /worker started|"level":[4-6]0/, 90_000).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`worker did not start: ${(err as Error).message}\n${(await done).stderr}`);
  });
  const [inThread, inProcess] = await Promise.all([
    (await threads.echo.enqueue({ text: 'thread' })).result({ timeout: '60s' }),
    (await processes.echo.enqueue({ text: 'process' })).result({ timeout: '60s' }),
  ]);
  assert.equal(inThread.pid, child.pid, 'a thread of the worker process');
  assert.ok(inThread.threadId > 0);
  assert.notEqual(inProcess.pid, child.pid, 'a process of its own');
  assert.ok(alive(inProcess.pid), 'the pool keeps its isolate for the next task');

  child.kill('SIGTERM');
  const run = await done;
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /echo from the isolate/);
  await until(() => !alive(inProcess.pid), 5000, 'the isolate process to end with its worker');
});

test('a process isolate exits when its worker is SIGKILLed (its IPC channel closes)', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix, queues: QUEUES });
  const processes = defineIsolated(app, 'process');
  const child = spawnCli(
    ['worker', '--app', 'test/isolation/fixtures/isolated-app.ts', '--concurrency', '1'],
    {
      REDIS_URL: server().url,
      TEST_PREFIX: prefix,
      TASUKI_LOG_LEVEL: 'info',
    },
  );
  const done = finished(child, 180_000);
  await waitForOutput(child, /worker started|"level":[4-6]0/, 90_000).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`worker did not start: ${(err as Error).message}\n${(await done).stderr}`);
  });
  const r = await (await processes.echo.enqueue({ text: 'x' })).result({ timeout: '60s' });
  assert.ok(alive(r.pid));
  child.kill('SIGKILL');
  await done;
  await until(() => !alive(r.pid), 10_000, 'the orphaned isolate to exit');
});
