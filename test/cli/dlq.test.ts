/**
 * `tasuki dlq` end to end: the CLI runs from the sources in a child process whose stdout is a pipe,
 * against dead letters made by a real worker.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type DeadLetter, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runCli } from '../support/cli.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

/** An app whose `fail` task always throws, and a worker run until `n` tasks per queue are dead. */
async function deadLetters(
  queues: Record<string, number>,
  pad = 0,
): Promise<{ app: Tasuki; ids: Record<string, string[]>; args: string[] }> {
  const app = newApp(server(), { queues: Object.keys(queues) });
  const fail = app.task({
    name: 'fail',
    queue: Object.keys(queues)[0],
    schema: z.object({ i: z.number(), pad: z.string() }),
    maxAttempts: 1,
    handler: ({ i }) => Promise.reject(new Error(`task ${i} failed\non purpose`)),
  });
  const worker = new Worker(app, { logger: silentLogger(), concurrency: 50 });
  await worker.start();
  const ids: Record<string, string[]> = {};
  for (const [queue, n] of Object.entries(queues)) {
    const handles = await fail.enqueueMany(
      Array.from({ length: n }, (_, i) => ({ args: { i, pad: 'x'.repeat(pad) }, options: { queue } })),
    );
    // Each result rejects once its task is dead: a wait on events, not on time.
    await Promise.all(handles.map((h) => h.result({ timeout: '60s' }).catch(() => undefined)));
    ids[queue] = handles.map((h) => h.id);
  }
  await worker.stop();
  return { app, ids, args: ['--prefix', app.keys.space.prefix] };
}

const env = (): NodeJS.ProcessEnv => ({ REDIS_URL: server().url });

test('dlq list --json read through a pipe arrives whole (over 700 KB)', async () => {
  const { args, ids } = await deadLetters({ default: 3000 }, 100);
  const run = await runCli(
    ['dlq', 'list', ...args, '--queue', 'default', '--limit', '5000', '--json'],
    env(),
  );
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.stdout.length > 700_000, `only ${run.stdout.length} bytes of JSON`);
  const list = JSON.parse(run.stdout) as DeadLetter[];
  assert.equal(list.length, 3000);
  assert.deepEqual(
    list.map((d) => d.taskId),
    ids.default,
  );
});

test('dlq list without --queue lists every queue, oldest first; --queue narrows; a typo fails', async () => {
  const { args, ids } = await deadLetters({ mail: 2, images: 1 });
  const all = await runCli(['dlq', 'list', ...args], env());
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split('  ')[0]),
    [...(ids.mail ?? []), ...(ids.images ?? [])],
  );
  assert.match(
    lines[0] ?? '',
    /^\S+@mail {2}fail {2}max-attempts {2}attempts=1 {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}Error: task 0 failed$/,
  );
  assert.equal(all.stderr, '3 of 3 dead letters in "images", "mail"\n');

  const one = await runCli(['dlq', 'list', ...args, '--queue', 'images', '--json'], env());
  assert.deepEqual(
    (JSON.parse(one.stdout) as DeadLetter[]).map((d) => d.taskId),
    ids.images,
  );

  const typo = await runCli(['dlq', 'list', ...args, '--queue', 'imagse'], env());
  assert.equal(typo.code, 2);
  assert.equal(typo.stdout, '');
  assert.match(
    typo.stderr,
    /^tasuki: unknown queue "imagse": no worker has served it and it holds no tasks under prefix "t[0-9a-f]+" \(queues there: "images", "mail"\)/,
  );
});

test('dlq show takes the queue from the task id; human output has ISO times and a real stack', async () => {
  const { args, ids } = await deadLetters({ mail: 1 });
  const id = ids.mail?.[0] as string;
  const show = await runCli(['dlq', 'show', ...args, '--id', id], env());
  assert.equal(show.code, 0, show.stderr);
  const out = show.stdout;
  assert.match(out, new RegExp(`^task id: {3}${id}\n`));
  assert.match(out, /\nfailed at: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n/);
  assert.match(out, /\nerror: {5}Error: task 0 failed\n {11}on purpose\n/);
  assert.match(out, /\nstack:\n {2}Error: task 0 failed\n {2}on purpose\n {6}at /);
  assert.doesNotMatch(out, /\\n/);

  const json = await runCli(['dlq', 'show', ...args, '--id', id, '--json'], env());
  const d = JSON.parse(json.stdout) as DeadLetter;
  assert.equal(d.taskId, id);
  assert.equal(typeof d.failedAt, 'number');

  const bare = await runCli(['dlq', 'show', ...args, '--id', d.deadId], env());
  assert.equal(bare.code, 2);
  assert.match(
    bare.stderr,
    /--id: ".+" is a dead-letter id, which does not name its queue: give --queue too/,
  );
  const withQueue = await runCli(['dlq', 'show', ...args, '--id', d.deadId, '--queue', 'mail'], env());
  assert.equal(withQueue.code, 0, withQueue.stderr);
});

test('dlq retry: ids from several queues without --queue; a missing id or a typo changes nothing', async () => {
  const { app, args, ids } = await deadLetters({ mail: 2, images: 2 });
  const [m0, m1] = ids.mail as [string, string];
  const [i0] = ids.images as [string];

  const typo = await runCli(['dlq', 'retry', ...args, '--id', m0.replace('@mail', '@mial')], env());
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^tasuki: unknown queue "mial"/);
  assert.doesNotMatch(typo.stdout + typo.stderr, /retried/);

  const missing = await runCli(['dlq', 'retry', ...args, '--id', m0, '--id', '1-0@mail'], env());
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no dead letter "1-0@mail"; nothing was retried/);
  assert.equal(await app.deadLetters.count('mail'), 2);

  const retried = await runCli(['dlq', 'retry', ...args, '--id', m0, '--id', i0], env());
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal(retried.stdout, 'retried 2, skipped 0 (undecodable)\n');
  assert.deepEqual(
    (await app.deadLetters.list('mail')).map((d) => d.taskId),
    [m1],
  );
  assert.equal(await app.deadLetters.count('images'), 1);
  assert.equal((await app.getTask(m0))?.state, 'queued');
});

test('dlq retry --all and purge --all: one queue with --queue, every queue without', async () => {
  const { app, args, ids } = await deadLetters({ mail: 2, images: 3 });
  const one = await runCli(['dlq', 'retry', ...args, '--queue', 'images', '--all', '--json'], env());
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(JSON.parse(one.stdout), { retried: 3, skipped: 0 });
  assert.equal(await app.deadLetters.count('images'), 0);
  assert.equal((await app.queueStats('images')).waiting, 3);
  for (const id of ids.images ?? []) assert.equal((await app.getTask(id))?.state, 'queued');

  const purgeOne = await runCli(['dlq', 'purge', ...args, '--id', ids.mail?.[0] as string], env());
  assert.equal(purgeOne.stdout, 'purged 1\n');
  const purgeAll = await runCli(['dlq', 'purge', ...args, '--all'], env());
  assert.equal(purgeAll.code, 0, purgeAll.stderr);
  assert.equal(purgeAll.stdout, 'purged 1\n');
  assert.equal(await app.deadLetters.count('mail'), 0);
  const again = await runCli(['dlq', 'purge', ...args, '--all', '--json'], env());
  assert.deepEqual(JSON.parse(again.stdout), { purged: 0 });
});

test('dlq retry and purge: --id with --all, or neither, is a clear error', async () => {
  const { app, args, ids } = await deadLetters({ mail: 1 });
  for (const cmd of ['retry', 'purge']) {
    const both = await runCli(['dlq', cmd, ...args, '--all', '--id', ids.mail?.[0] as string], env());
    assert.equal(both.code, 2);
    assert.equal(
      both.stderr,
      'tasuki: invalid command line: --all: give --id <task id>... or --all, not both: --all already means every dead letter\n',
    );
    const neither = await runCli(['dlq', cmd, ...args], env());
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /--id: give --id <task id> \(repeatable\) or --all/);
  }
  assert.equal(await app.deadLetters.count('mail'), 1);
});
