import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { Worker, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runCli } from '../support/cli.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';

const server = useRedis();
const env = (url = server().url): NodeJS.ProcessEnv => ({ REDIS_URL: url });

/**
 * Queue `default`: one succeeded task, two waiting, one delayed; queue `mail`: one dead letter.
 * A worker served both, so they are listed in the prefix's set of queues.
 */
async function seeded(): Promise<{ app: Tasuki; done: string; prefix: string }> {
  const app = newApp(server(), { queues: ['default', 'mail'] });
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
  return { app, done: done.id, prefix: app.keys.space.prefix };
}

test('inspect task prints the state; unknown and malformed ids fail with one line', async () => {
  const { done, prefix } = await seeded();
  const task = await runCli(['inspect', 'task', done, '--prefix', prefix], env());
  assert.equal(task.code, 0, task.stderr);
  const info = JSON.parse(task.stdout) as { state: string; result: string; task: string };
  assert.deepEqual([info.state, info.result, info.task], ['succeeded', 'fine', 'ok']);

  const missing = await runCli(['inspect', 'task', '1-0@default', '--prefix', prefix], env());
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^tasuki: no task 1-0@default: never enqueued under prefix/);
  const malformed = await runCli(['inspect', 'task', 'nonsense', '--prefix', prefix], env());
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /"nonsense" is not a tasuki task id/);
});

test('inspect queues: the table, the JSON, and an unknown --queues name fails', async () => {
  const { prefix } = await seeded();
  const table = await runCli(['inspect', 'queues', '--prefix', prefix], env());
  assert.equal(table.code, 0, table.stderr);
  assert.equal(
    table.stdout,
    [
      'QUEUE    WAITING  ACTIVE  STALLED  DELAYED  DEAD',
      'default        2       0        0        1     0',
      'mail           0       0        0        0     1',
      '',
    ].join('\n'),
  );

  const json = await runCli(['inspect', 'queues', '--prefix', prefix, '--queues', 'mail', '--json'], env());
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), [
    { queue: 'mail', inStream: 0, active: 0, waiting: 0, delayed: 0, dead: 1, stalled: 0, paused: false },
  ]);

  const nope = await runCli(['inspect', 'queues', '--prefix', prefix, '--queues', 'default,nope'], env());
  assert.equal(nope.code, 2);
  assert.equal(nope.stdout, '');
  assert.equal(
    nope.stderr,
    `tasuki: unknown queue "nope": no worker has served it and it holds no tasks under prefix "${prefix}" ` +
      '(queues there: "default", "mail"). Check the name, --prefix or --url, or pass --app\n',
  );
  const withApp = await runCli(
    ['inspect', 'queues', '--app', 'test/fixtures/app.ts', '--queues', 'nope'],
    env(),
  );
  assert.equal(withApp.code, 2);
  assert.match(
    withApp.stderr,
    /^tasuki: unknown queue "nope": the app in test\/fixtures\/app\.ts declares "default", "other"\n$/,
  );
});

test('inspect queues with no queue under the prefix says so (exit 0); --json prints []', async () => {
  const prefix = randomPrefix();
  const empty = await runCli(['inspect', 'queues', '--prefix', prefix], env());
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, '');
  assert.equal(
    empty.stderr,
    `no queues under prefix "${prefix}": no worker has served one yet (pass --queues or --app)\n`,
  );
  const json = await runCli(['inspect', 'queues', '--prefix', prefix, '--json'], env());
  assert.equal(json.stdout, '[]\n');
});

test('inspect queues: a task held by a worker that went silent is counted as STALLED and explained', async () => {
  const app = newApp(server(), { queues: ['default'] });
  const slow = app.task({ name: 'slow', schema: z.object({}), handler: () => 'done' });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start(); // creates the consumer group and records the queue
  await worker.stop();
  await slow.enqueueMany([{ args: {} }, { args: {} }]);
  // A worker that fetched one task and died: its entry stays pending, its idle time grows.
  const redis = server().client();
  await redis.xreadgroup(
    'GROUP',
    'tasuki',
    'dead-worker',
    'COUNT',
    1,
    'STREAMS',
    app.keys.stream.key({ queue: 'default' }),
    '>',
  );
  const args = ['inspect', 'queues', '--prefix', app.keys.space.prefix];

  // With the default claimIdle (30 s) it is too recent to call stalled: active, not stalled.
  const fresh = await runCli([...args, '--json'], env());
  assert.deepEqual(JSON.parse(fresh.stdout), [
    { queue: 'default', inStream: 2, active: 1, waiting: 1, delayed: 0, dead: 0, stalled: 0, paused: false },
  ]);
  // Workers configured with claimIdle 1 ms (bare milliseconds on the command line) count it.
  const stale = await runCli([...args, '--claim-idle', '1'], env());
  assert.equal(stale.code, 0, stale.stderr);
  assert.equal(
    stale.stdout,
    [
      'QUEUE    WAITING  ACTIVE  STALLED  DELAYED  DEAD',
      'default        1       1        1        0     0',
      '',
      'note: STALLED counts the 1 ACTIVE task (in "default") whose worker sent no heartbeat for 1 ms ' +
        '(--claim-idle): most likely it died. A live worker serving the queue takes them over.',
      '',
    ].join('\n'),
  );
});

test('inspect is read-only: it runs as a Redis ACL user that cannot write', async () => {
  const { done, prefix } = await seeded();
  const admin = server().client();
  // Read commands, plus what connecting and running the (read-only) lookup script need. Commands
  // a script calls are checked against the same user, so no script can write for it either.
  await admin.call(
    'ACL',
    'SETUSER',
    'inspector',
    'reset',
    'on',
    '>inspectpw',
    '~*',
    '+@read',
    '+info',
    '+client|setname',
    '+select',
    '+evalsha',
    '+eval',
    '+ping',
    '+quit',
  );
  const url = new URL(server().url);
  url.username = 'inspector';
  url.password = 'inspectpw';
  const asReader = env(url.toString());
  await admin.call('ACL', 'LOG', 'RESET');

  const queues = await runCli(['inspect', 'queues', '--prefix', prefix, '--json'], asReader);
  assert.equal(queues.code, 0, queues.stderr);
  assert.equal((JSON.parse(queues.stdout) as unknown[]).length, 2);
  const task = await runCli(['inspect', 'task', done, '--prefix', prefix], asReader);
  assert.equal(task.code, 0, task.stderr);
  assert.equal((JSON.parse(task.stdout) as { state: string }).state, 'succeeded');

  // Nothing was refused (a refused write whose error was swallowed would be in the ACL log).
  assert.deepEqual(await admin.call('ACL', 'LOG'), []);
  // The user really cannot write, directly or through a script.
  const reader = new Redis(url.toString());
  try {
    await assert.rejects(reader.set('x', '1'), /NOPERM/);
    await assert.rejects(reader.eval("return redis.call('SET', 'x', '1')", 0), /can't run this command/);
  } finally {
    reader.disconnect();
  }
});
