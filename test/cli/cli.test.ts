import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { z } from 'zod';
import { tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { finished, jsonLines, ROOT, runCli, spawnCli, waitForOutput } from '../support/cli.js';
import { randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis();

function fixtureApp(prefix: string) {
  const app = tasuki({ redis: server().url, prefix, queues: ['default', 'other'], logger: silentLogger() });
  const double = app.task({ name: 'double', schema: z.object({ n: z.number() }), handler: () => 0 });
  return { app, double };
}

test('tasuki worker runs an app module, logs JSON lines per task, and on SIGTERM says it stops and exits 0', async () => {
  const prefix = randomPrefix();
  const child = spawnCli(
    [
      'worker',
      '--app',
      'test/fixtures/app.ts',
      '--queues',
      'default',
      '--concurrency',
      '4',
      '--grace',
      '30000',
    ],
    { REDIS_URL: server().url, TEST_PREFIX: prefix },
  );
  const done = finished(child);
  await waitForOutput(child, /worker started/);
  const { app, double } = fixtureApp(prefix);
  const handles = await double.enqueueMany([1, 2, 3].map((n) => ({ args: { n } })));
  assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '10s' }))), [2, 4, 6]);
  await app.close();
  child.kill('SIGTERM');
  const run = await done;
  assert.equal(run.code, 0, run.stderr);
  const lines = jsonLines(run.stdout);
  const taskLines = lines.filter((l) => l.msg === 'task succeeded');
  assert.equal(taskLines.length, 3);
  for (const l of taskLines) {
    assert.equal(l.task, 'double');
    assert.equal(l.queue, 'default');
    assert.equal(l.attempt, 1);
    assert.equal(typeof l.durationMs, 'number');
    assert.ok(handles.some((h) => h.id === l.taskId));
    assert.equal(l.level, 30);
  }
  // The first signal is logged with the grace it gives (--grace in bare milliseconds).
  const stopping = lines.find((l) => l.signal === 'SIGTERM');
  assert.equal(stopping?.graceMs, 30_000);
  assert.equal(
    stopping?.msg,
    'SIGTERM: shutting down: no new tasks; running tasks get up to 30s (grace) to finish, then are handed back; ' +
      'send SIGTERM again to exit at once',
  );
  assert.ok(lines.findIndex((l) => l.signal) < lines.findIndex((l) => l.msg === 'worker stopped'));
  assert.equal(run.stderr, '');
});

test('tasuki worker: a second signal exits at once with 130 and says what becomes of running tasks', async () => {
  const prefix = randomPrefix();
  const child = spawnCli(['worker', '--app', 'test/fixtures/app.ts', '--claim-idle', '45s'], {
    REDIS_URL: server().url,
    TEST_PREFIX: prefix,
    TASK_DELAY_MS: '600000',
  });
  const done = finished(child, 120_000);
  await waitForOutput(child, /worker started/);
  const { app, double } = fixtureApp(prefix);
  await double.enqueue({ n: 1 });
  await until(async () => (await app.queueStats('default')).active === 1, 20_000, 'the task to start');
  child.kill('SIGINT');
  await waitForOutput(child, /SIGINT: shutting down: .*running tasks get up to 25s \(grace\)/);
  child.kill('SIGINT');
  const run = await done;
  assert.equal(run.code, 130);
  assert.equal(
    run.stderr,
    'tasuki: second SIGINT: exiting now (code 130) without waiting for running tasks; ' +
      'other workers take them over after claimIdle (45s)\n',
  );
  assert.equal((await app.queueStats('default')).active, 1);
  await app.close();
});

test('tasuki worker: bad input gives one clear line and a non-zero exit', async () => {
  const env = { REDIS_URL: server().url };
  const missing = await runCli(['worker', '--app', 'test/fixtures/nope.ts'], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^tasuki: app module "test\/fixtures\/nope\.ts" not found/);

  const badQueue = await runCli(['worker', '--app', 'test/fixtures/app.ts', '--queues', 'default,zzz'], env);
  assert.equal(badQueue.code, 2);
  assert.equal(
    badQueue.stderr,
    'tasuki: invalid command line: --queues: unknown queue "zzz": the app in test/fixtures/app.ts declares ' +
      '"default", "other"; serve some of those, or add it to the app\'s `queues` option. No worker was started.\n',
  );

  const badN = await runCli(
    ['worker', '--app', 'test/fixtures/app.ts', '--concurrency', 'lots', '--grace', '5x'],
    env,
  );
  assert.equal(badN.code, 2);
  assert.match(
    badN.stderr,
    /^tasuki: invalid command line: --concurrency: "lots" is not an integer >= 1; --grace: "5x" is not a positive duration/,
  );

  const noRedis = await runCli(['worker', '--app', 'test/fixtures/app.ts'], {
    REDIS_URL: 'redis://u:secret@127.0.0.1:1',
  });
  assert.equal(noRedis.code, 2);
  assert.match(noRedis.stderr, /cannot reach Redis at redis:\/\/u:\*\*\*@127\.0\.0\.1:1/);
  assert.doesNotMatch(noRedis.stderr, /secret/);

  const noArgs = await runCli(['worker']);
  assert.equal(noArgs.code, 2);
  assert.match(noArgs.stderr, /required option '--app <module>'/);
});

test('tasuki --version prints the package version; a bad TASUKI_LOG_LEVEL is one line naming the levels', async () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string };
  const version = await runCli(['--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, `${pkg.version}\n`);

  const level = await runCli(['worker', '--app', 'test/fixtures/app.ts'], {
    REDIS_URL: server().url,
    TASUKI_LOG_LEVEL: 'verbose',
  });
  assert.equal(level.code, 2);
  assert.equal(
    level.stderr,
    'tasuki: TASUKI_LOG_LEVEL="verbose" is not a log level; use one of fatal, error, warn, info, debug, trace, silent (or unset it for info)\n',
  );
  assert.equal(level.stdout, '');
});
