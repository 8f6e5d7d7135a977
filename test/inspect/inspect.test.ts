import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { runCli } from '../support/cli.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

test('inspect.tasks pages waiting tasks oldest and newest first, without reading the whole queue', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 'job', queue: 'q', schema: z.object({ i: z.number() }), handler: () => 0 });
  const handles = await t.enqueueMany(Array.from({ length: 25 }, (_, i) => ({ args: { i } })));
  const ids = handles.map((h) => h.id);
  const p1 = await app.inspect.tasks('q', { state: 'waiting', limit: 10 });
  assert.deepEqual(
    p1.tasks.map((x) => x.id),
    ids.slice(0, 10),
  );
  assert.equal(p1.tasks[0]?.task, 'job');
  assert.equal(p1.tasks[0]?.args, '{"i":0}');
  const p2 = await app.inspect.tasks('q', { state: 'waiting', limit: 10, cursor: p1.next });
  const p3 = await app.inspect.tasks('q', { state: 'waiting', limit: 10, cursor: p2.next });
  assert.deepEqual(
    [...p1.tasks, ...p2.tasks, ...p3.tasks].map((x) => x.id),
    ids,
  );
  assert.equal(p3.next, undefined);
  const n1 = await app.inspect.tasks('q', { state: 'waiting', order: 'newest', limit: 20 });
  const n2 = await app.inspect.tasks('q', { state: 'waiting', order: 'newest', limit: 20, cursor: n1.next });
  assert.deepEqual(
    [...n1.tasks, ...n2.tasks].map((x) => x.id),
    [...ids].reverse(),
  );
  await assert.rejects(app.inspect.tasks('nope', { state: 'waiting' }), { code: 'E_UNKNOWN_QUEUE' });
});

test('inspect: delayed tasks by due time, active tasks with their worker, workers with concurrency and counts', async () => {
  const app = newApp(server(), { queues: ['q'] });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = app.task({ name: 'slow', queue: 'q', schema: z.object({}), handler: () => gate });
  const later = app.task({
    name: 'later',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: () => 0,
  });
  const d2 = await later.enqueue({ n: 2 }, { delay: '2h' });
  const d1 = await later.enqueue({ n: 1 }, { delay: '1h' });
  const delayed = await app.inspect.tasks('q', { state: 'delayed' });
  assert.deepEqual(
    delayed.tasks.map((x) => [x.id, x.task, x.args]),
    [
      [d1.id, 'later', '{"n":1}'],
      [d2.id, 'later', '{"n":2}'],
    ],
  );
  assert.ok((delayed.tasks[0]?.dueAt ?? 0) > Date.now() + 3_500_000);
  const worker = new Worker(app, { concurrency: 3, name: 'w-inspect' });
  await worker.start();
  try {
    const running = await slow.enqueue({});
    await until(() => worker.inFlight === 1, 5000, 'running');
    const active = await app.inspect.tasks('q', { state: 'active' });
    assert.deepEqual(
      active.tasks.map((x) => [x.id, x.task, x.worker]),
      [[running.id, 'slow', 'w-inspect']],
    );
    let workers = await app.inspect.workers();
    await until(
      async () => (workers = await app.inspect.workers()).some((w) => w.inFlight === 1),
      8000,
      'presence with the running task',
    );
    const w = workers.find((x) => x.name === 'w-inspect');
    assert.equal(w?.alive, true);
    assert.equal(w?.concurrency, 3);
    assert.deepEqual(w?.queues, ['q']);
    assert.equal(w?.holding.length, 1);
    assert.equal(w?.pid, process.pid);
    release();
    await running.result();
  } finally {
    release();
    await worker.stop();
  }
  assert.deepEqual(await app.inspect.workers(), [], 'a stopped worker removes its presence');
});

test('inspect: locks held with owner, TTL and fence; Redis memory', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const locks = await app.locks({ ttl: '10s' });
  const lock = await locks.acquire('report');
  try {
    const { locks: held, more } = await app.inspect.locks();
    assert.equal(more, false);
    assert.equal(held.length, 1);
    assert.equal(held[0]?.name, 'report');
    assert.equal(held[0]?.fence, String(lock.token));
    assert.ok((held[0]?.ttlMs ?? 0) > 5000);
  } finally {
    await lock.release();
  }
  assert.deepEqual((await app.inspect.locks()).locks, []);
  assert.ok((await app.inspect.memory()).used > 0);
});

test('tasuki inspect tasks / workers / top from the command line, with --json', async () => {
  const app = newApp(server(), { queues: ['default'] });
  const t = app.task({ name: 'count', schema: z.object({ i: z.number() }), handler: () => 0 });
  await t.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ args: { i } })));
  const env = { REDIS_URL: server().url };
  const base = ['--prefix', app.keys.space.prefix, '--queues', 'default'];
  const json = await runCli(
    ['inspect', 'tasks', 'default', '--prefix', app.keys.space.prefix, '--limit', '2', '--json'],
    env,
  );
  assert.equal(json.code, 0, json.stderr);
  const page = JSON.parse(json.stdout) as { tasks: { task: string }[]; next?: string };
  assert.equal(page.tasks.length, 2);
  assert.ok(page.next);
  const text = await runCli(
    [
      'inspect',
      'tasks',
      'default',
      '--prefix',
      app.keys.space.prefix,
      '--order',
      'newest',
      '--after',
      page.next,
    ],
    env,
  );
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /ID +TASK +ATTEMPT +ENQUEUED/);
  const bad = await runCli(
    ['inspect', 'tasks', 'default', '--prefix', app.keys.space.prefix, '--state', 'gone'],
    env,
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--state/);
  const top = await runCli(['inspect', 'top', ...base, '--iterations', '2', '--interval', '100ms'], env);
  assert.equal(top.code, 0, top.stderr);
  assert.equal(top.stdout.match(/QUEUE +WAITING +ACTIVE +DELAYED +DEAD +LAG/g)?.length, 2);
  assert.match(top.stdout, /default +3 +0 +0 +0/);
  const workers = await runCli(['inspect', 'workers', '--prefix', app.keys.space.prefix, '--json'], env);
  assert.equal(workers.code, 0, workers.stderr);
  assert.deepEqual(JSON.parse(workers.stdout), []);
});
