import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  tasuki,
  Worker,
  type EnqueuedEvent,
  type TaskEvent,
  type TaskEventMap,
  type TaskEvents,
} from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

/** Collects the events of one name as they arrive. */
function collect<K extends keyof TaskEventMap>(emitter: TaskEvents, name: K): TaskEventMap[K][] {
  const seen: TaskEventMap[K][] = [];
  emitter.on(name, (e) => seen.push(e));
  return seen;
}

test('worker.on: succeeded, retried, dead and failed carry the task, attempt and error; the record is stored first', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const ok = app.task({
    name: 'ok',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => n * 2,
  });
  const bad = app.task({
    name: 'bad',
    queue: 'q',
    schema: z.object({}),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 10 },
    handler: () => {
      throw new Error('nope');
    },
  });
  const worker = new Worker(app, { concurrency: 2 });
  const succeeded = collect(worker, 'succeeded');
  const retried = collect(worker, 'retried');
  const dead = collect(worker, 'dead');
  const failed = collect(worker, 'failed');
  const all = collect(worker, 'task');
  const states: string[] = [];
  worker.on('succeeded', (e) => void app.getTask(e.id).then((t) => states.push(t?.state ?? 'none')));
  await worker.start();
  try {
    const h1 = await ok.enqueue({ n: 21 });
    const h2 = await bad.enqueue({});
    assert.equal(await h1.result(), 42);
    await assert.rejects(h2.result());
    await until(() => dead.length === 1 && states.length === 1, 5000, 'events');
    assert.deepEqual(
      succeeded.map((e) => [e.type, e.id, e.task, e.queue, e.attempt, e.result]),
      [['succeeded', h1.id, 'ok', 'q', 1, 42]],
    );
    assert.deepEqual(states, ['succeeded']);
    assert.equal(retried.length, 1);
    assert.equal(retried[0]?.attempt, 1);
    assert.equal(retried[0]?.error.message, 'nope');
    assert.ok((retried[0]?.retryAt ?? 0) >= (retried[0]?.finishedAt ?? Infinity));
    assert.deepEqual(
      dead.map((e) => [e.id, e.attempt, e.reason, e.error.message]),
      [[h2.id, 2, 'max-attempts', 'nope']],
    );
    assert.ok(dead[0]?.error.stack?.includes('nope'));
    assert.deepEqual(
      failed.map((e) => e.type),
      ['retried', 'dead'],
    );
    assert.equal(all.length, 3);
    assert.equal(worker.listenerCount('succeeded'), 2);
  } finally {
    await worker.stop();
  }
});

test('app.enqueueEvents `enqueued` and worker `started`: the same map, in order, each only while listened to', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 't', queue: 'q', schema: z.object({ n: z.number() }), handler: ({ n }) => n });
  const order: string[] = [];
  const enqueued: EnqueuedEvent[] = [];
  app.enqueueEvents.on('enqueued', (e) => {
    enqueued.push(e);
    order.push(`enqueued:${e.id}`);
  });
  const worker = new Worker(app);
  const outcomes = collect(worker, 'task');
  assert.equal(
    worker.hasListeners('started'),
    false,
    'a worker observed for outcomes builds no started event',
  );
  const started = collect(worker, 'started');
  worker
    .on('started', (e) => order.push(`started:${e.id}`))
    .on('task', (e) => order.push(`${e.type}:${e.id}`));
  const handle = await t.enqueue({ n: 1 });
  const [bulk] = await t.enqueueMany([{ args: { n: 2 } }]);
  const repeat = await t.enqueue({ n: 3 }, { idempotencyKey: 'k' });
  assert.equal((await t.enqueue({ n: 3 }, { idempotencyKey: 'k' })).created, false);
  assert.deepEqual(
    enqueued.map((e) => [e.type, e.id, e.queue, e.task]),
    [handle, bulk, repeat].map((h) => ['enqueued', h?.id, 'q', 't']),
    'one per task created; an idempotent repeat created none',
  );
  await worker.start();
  try {
    for (const h of [handle, bulk, repeat]) await h?.result();
    await until(() => outcomes.length === 3, 5000, 'outcomes');
    assert.deepEqual(
      started.map((e) => [e.type, e.id, e.task, e.attempt, e.worker]),
      [handle, bulk, repeat].map((h) => ['started', h?.id, 't', 1, worker.name]),
    );
    for (const h of [handle, bulk, repeat]) {
      const mine = order.filter((o) => o.endsWith(`:${h?.id}`));
      assert.deepEqual(mine, [`enqueued:${h?.id}`, `started:${h?.id}`, `succeeded:${h?.id}`]);
    }
  } finally {
    await worker.stop();
  }
});

test('a listener that throws is logged and does not stop the worker; off() and once() work', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 't', queue: 'q', schema: z.object({}), handler: () => 'x' });
  const worker = new Worker(app);
  const errors: string[] = [];
  worker.listenerErrors = (err, event) => errors.push(`${event}: ${(err as Error).message}`);
  const boom = (): void => {
    throw new Error('listener bug');
  };
  worker.on('succeeded', boom);
  let onceCount = 0;
  worker.once('task', () => onceCount++);
  await worker.start();
  try {
    assert.equal(await (await t.enqueue({})).result(), 'x');
    await until(() => errors.length === 1, 5000, 'listener error');
    worker.off('succeeded', boom);
    assert.equal(worker.listening, false, 'no listener left');
    assert.equal(await (await t.enqueue({})).result(), 'x');
    assert.deepEqual(errors, ['succeeded: listener bug']);
    assert.equal(onceCount, 1);
    assert.equal(worker.counts.succeeded, 2);
  } finally {
    await worker.stop();
  }
});

test('app.subscribe: another app sees every worker’s events, small batches and big ones (records read by MGET)', async () => {
  const app = newApp(server(), { queues: ['a', 'b'] });
  const echo = app.task({
    name: 'echo',
    queue: 'a',
    schema: z.object({ s: z.string() }),
    handler: ({ s }) => s,
  });
  const fail = app.task({
    name: 'fail',
    queue: 'b',
    schema: z.object({}),
    handler: () => {
      throw new Error('bad');
    },
  });
  // The watcher is another app object with its own connections, as in another process.
  const watcher = tasuki({
    redis: server().url,
    prefix: app.keys.space.prefix,
    queues: ['a', 'b'],
    logger: silentLogger(),
  });
  const sub = watcher.subscribe();
  const events: TaskEvent[] = [];
  sub.on('task', (e) => events.push(e));
  const failed = collect(sub, 'failed');
  await sub.ready;
  const worker = new Worker(app, { concurrency: 20 });
  await worker.start();
  try {
    const big = 'x'.repeat(3000); // over the inline limit: the event names the task only
    const handles = [
      await echo.enqueue({ s: 'small' }),
      await echo.enqueue({ s: big }),
      await fail.enqueue({}),
      ...(await echo.enqueueMany(Array.from({ length: 200 }, (_, i) => ({ args: { s: `m${i}` } })))),
    ];
    await until(() => events.length === handles.length, 10_000, 'all events');
    const byId = new Map(events.map((e) => [e.id, e]));
    assert.deepEqual(new Set(byId.keys()), new Set(handles.map((h) => h.id)));
    const second = byId.get(handles[1]?.id ?? '');
    assert.equal(second?.type, 'succeeded');
    assert.equal(second?.type === 'succeeded' ? second.result : undefined, big);
    assert.deepEqual(
      failed.map((e) => [e.type, e.queue, e.task, e.error.message]),
      [['dead', 'b', 'fail', 'bad']],
    );
    await sub.close();
    const before = events.length;
    await (await echo.enqueue({ s: 'after close' })).result();
    assert.equal(events.length, before, 'no event after close');
  } finally {
    await worker.stop();
    await watcher.close();
  }
});

test('app.subscribe rejects a queue the app does not declare', () => {
  const app = newApp(server(), { queues: ['q'] });
  assert.throws(() => app.subscribe(['nope']), { code: 'E_UNKNOWN_QUEUE' });
});
