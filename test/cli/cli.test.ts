import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { spawn } from 'node:child_process';
import { finished, ROOT, runCli, spawnCli, waitForOutput } from '../support/cli.js';
import { randomPrefix, useRedis } from '../support/redis.js';
import { z } from 'zod';

const server = useRedis();

test('tasuki worker runs an app module, logs JSON lines per task, and exits 0 on SIGTERM', async () => {
  const prefix = randomPrefix();
  const child = spawnCli(
    ['worker', '--app', 'test/fixtures/app.ts', '--queues', 'default', '--concurrency', '4'],
    {
      REDIS_URL: server().url,
      TEST_PREFIX: prefix,
    },
  );
  const done = finished(child);
  await waitForOutput(child, /worker started/);
  const app = tasuki({ redis: server().url, prefix, queues: ['default', 'other'], logger: silentLogger() });
  const double = app.task({ name: 'double', schema: z.object({ n: z.number() }), handler: () => 0 });
  const handles = await double.enqueueMany([1, 2, 3].map((n) => ({ args: { n } })));
  assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '10s' }))), [2, 4, 6]);
  await app.close();
  child.kill('SIGTERM');
  const run = await done;
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const taskLines = lines.filter((l) => l.msg === 'task succeeded');
  assert.equal(taskLines.length, 3);
  for (const l of taskLines) {
    assert.equal(l.task, 'double');
    assert.equal(l.queue, 'default');
    assert.equal(l.attempt, 1);
    assert.equal(typeof l.durationMs, 'number');
    assert.ok(handles.some((h) => h.id === l.taskId));
    assert.equal(typeof l.time, 'string');
    assert.equal(l.level, 30);
  }
  assert.ok(lines.some((l) => l.msg === 'worker stopped'));
});

test('tasuki worker: bad input gives one clear line and a non-zero exit', async () => {
  const missing = await runCli(['worker', '--app', 'test/fixtures/nope.ts'], { REDIS_URL: server().url });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /app module "test\/fixtures\/nope\.ts" not found/);

  const badQueue = await runCli(['worker', '--app', 'test/fixtures/app.ts', '--queues', 'zzz'], {
    REDIS_URL: server().url,
  });
  assert.equal(badQueue.code, 2);
  assert.match(badQueue.stderr, /unknown queue "zzz"/);

  const badN = await runCli(['worker', '--app', 'test/fixtures/app.ts', '--concurrency', 'lots'], {
    REDIS_URL: server().url,
  });
  assert.equal(badN.code, 2);
  assert.match(badN.stderr, /--concurrency: "lots" is not a positive integer/);

  const noRedis = await runCli(['worker', '--app', 'test/fixtures/app.ts'], {
    REDIS_URL: 'redis://u:secret@127.0.0.1:1',
  });
  assert.equal(noRedis.code, 2);
  assert.match(noRedis.stderr, /cannot reach Redis at redis:\/\/u:\*\*\*@127\.0\.0\.1:1/);
  assert.doesNotMatch(noRedis.stderr, /secret/);

  const noArgs = await runCli(['worker']);
  assert.notEqual(noArgs.code, 0);
  assert.match(noArgs.stderr, /required option '--app <module>'/);
});

test('tasuki dev runs the example app on its own redis-server and exits cleanly', async () => {
  // The real entry point: bin/tasuki.js on the built dist/ (npm test builds first).
  const child = spawn(process.execPath, ['bin/tasuki.js', 'dev'], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL: '', TASUKI_REDIS_URL: '', TASUKI_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = await finished(child, 90_000);
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.match(run.stderr, /started redis-server \(pid \d+\)/);
  assert.match(run.stdout, /result: 5/);
  assert.match(run.stdout, /failed as expected: mailbox nobody@example\.invalid does not exist/);
  assert.match(run.stdout, /state of the first task: succeeded/);
  assert.match(run.stdout, /"msg":"task succeeded"/);
});
