import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, TaskFailedError, UnknownQueueError, OptionsError } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

test('2,000 tasks in, 2,000 results out, each run exactly once; the stream holds nothing after', async () => {
  const app = newApp(server());
  const runs = new Map<number, number>();
  const t = app.task({
    name: 'count',
    schema: z.object({ i: z.number() }),
    handler: ({ i }) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      return i * 2;
    },
  });
  const handles = await t.enqueueMany(Array.from({ length: 2000 }, (_, i) => ({ args: { i } })));
  const worker = new Worker(app, { concurrency: 20, logger: silentLogger() });
  await worker.start();
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '20s' })));
  await worker.stop();
  assert.deepEqual(
    results,
    Array.from({ length: 2000 }, (_, i) => i * 2),
  );
  assert.equal(runs.size, 2000);
  assert.ok(
    [...runs.values()].every((n) => n === 1),
    'a task ran twice',
  );
  assert.deepEqual(worker.counts, { succeeded: 2000, failed: 0, retried: 0, expired: 0 });
  const redis = server().client();
  const stream = app.keys.stream.key({ queue: 'default' });
  assert.equal(await redis.xlen(stream), 0, 'finished entries must be deleted');
  const pending = (await redis.xpending(stream, 'tasuki')) as [number, ...unknown[]];
  assert.equal(pending[0], 0, 'finished entries must be acknowledged');
});

test('concurrency is honoured: never more than N handlers at once, and N are reached', async () => {
  const app = newApp(server());
  let now = 0;
  let max = 0;
  const t = app.task({
    name: 'slow',
    schema: z.object({}),
    handler: async () => {
      max = Math.max(max, ++now);
      await new Promise((r) => setTimeout(r, 20));
      now--;
    },
  });
  const handles = await t.enqueueMany(Array.from({ length: 60 }, () => ({ args: {} })));
  const worker = new Worker(app, { concurrency: 7, logger: silentLogger() });
  await worker.start();
  await Promise.all(handles.map((h) => h.result({ timeout: '10s' })));
  await worker.stop();
  assert.equal(max, 7);
});

test('a thrown error is the failure: state failed, the error stored, result() rejects with it', async () => {
  const app = newApp(server());
  const t = app.task({
    name: 'boom',
    schema: z.object({ why: z.string() }),
    handler: ({ why }) => {
      throw new RangeError(why);
    },
  });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const h = await t.enqueue({ why: 'out of range' });
  await assert.rejects(h.result({ timeout: '5s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.taskId, h.id);
    assert.equal(err.remote.name, 'RangeError');
    assert.equal(err.remote.message, 'out of range');
    assert.match(err.remote.stack ?? '', /RangeError: out of range/);
    return true;
  });
  await worker.stop();
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'failed');
  assert.equal(info?.error?.message, 'out of range');
  assert.deepEqual(worker.counts, { succeeded: 0, failed: 1, retried: 0, expired: 0 });
});

test('workers promote delayed tasks themselves; a delayed task runs after its delay, not before', async () => {
  const app = newApp(server());
  let ranAt = 0;
  const t = app.task({
    name: 'later',
    schema: z.object({}),
    handler: () => {
      ranAt = Date.now();
      return 'done';
    },
  });
  const worker = new Worker(app, { logger: silentLogger(), promoteIntervalMs: 50 });
  await worker.start();
  const at = Date.now();
  const h = await t.enqueue({}, { delay: 300 });
  assert.equal(await h.result({ timeout: '5s' }), 'done');
  await worker.stop();
  assert.ok(ranAt - at >= 300, `ran after ${ranAt - at} ms`);
  const redis = server().client();
  assert.equal(await redis.zcard(app.keys.delayed.key({ queue: 'default' })), 0);
  assert.equal(
    await redis.hlen(app.keys.parked.key({ queue: 'default' })),
    0,
    'parked message removed on finish',
  );
});

test('a worker serves only its queues', async () => {
  const app = newApp(server(), { queues: ['a', 'b'] });
  const ta = app.task({ name: 'ta', queue: 'a', schema: z.object({}), handler: () => 'a' });
  const tb = app.task({ name: 'tb', queue: 'b', schema: z.object({}), handler: () => 'b' });
  const worker = new Worker(app, { queues: ['a'], logger: silentLogger() });
  await worker.start();
  const ha = await ta.enqueue({});
  const hb = await tb.enqueue({});
  assert.equal(await ha.result({ timeout: '5s' }), 'a');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await hb.info())?.state, 'queued');
  await worker.stop();
  assert.throws(() => new Worker(app, { queues: ['c'] }), UnknownQueueError);
  assert.throws(() => new Worker(app, { concurrency: 0 }), OptionsError);
});

test('arguments that no longer match the schema fail the task with the field named', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'typed', schema: z.object({ n: z.number() }), handler: ({ n }) => n });
  const redis = server().client();
  await redis.xadd(app.keys.stream.key({ queue: 'default' }), '*', 'm', '["typed",{"n":"one"}]');
  const unknown = await redis.xadd(app.keys.stream.key({ queue: 'default' }), '*', 'm', '["nope",{}]');
  const garbage = await redis.xadd(app.keys.stream.key({ queue: 'default' }), '*', 'm', '{not json');
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const ok = await t.enqueue({ n: 7 });
  assert.equal(await ok.result({ timeout: '5s' }), 7);
  await until(() => worker.counts.failed === 3, 5000, 'three failures');
  await worker.stop();
  assert.equal((await app.getTask(`${unknown}@default`))?.error?.code, 'E_UNKNOWN_TASK');
  assert.equal((await app.getTask(`${garbage}@default`))?.error?.code, 'E_POISON');
  assert.equal(await redis.xlen(app.keys.stream.key({ queue: 'default' })), 0);
});

test('a handler gets its id, queue, attempt, an AbortSignal and a bound logger', async () => {
  const app = newApp(server());
  const t = app.task({
    name: 'ctx',
    schema: z.object({}),
    handler: (_args, ctx) => ({
      id: ctx.id,
      queue: ctx.queue,
      attempt: ctx.attempt,
      aborted: ctx.signal.aborted,
      log: typeof ctx.log.info,
    }),
  });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const h = await t.enqueue({});
  assert.deepEqual(await h.result({ timeout: '5s' }), {
    id: h.id,
    queue: 'default',
    attempt: 1,
    aborted: false,
    log: 'function',
  });
  await worker.stop();
});
