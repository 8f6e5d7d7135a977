import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  Worker,
  TaskFailedError,
  UnknownQueueError,
  OptionsError,
  type Logger,
  type StandardSchemaV1,
} from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, until, useRedis } from '../support/redis.js';

/** One parsed JSON log line. */
type LogLine = Record<string, unknown>;

/** A pino logger writing JSON lines to memory, and the lines written so far. */
function captureLogger(): { logger: Logger; lines: () => LogLine[] } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  return {
    logger,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as LogLine),
  };
}

/**
 * A Standard Schema whose validate returns a Promise: `{ n }` where n is a numeric string, parsed to
 * a number (the output differs from the input, so a test can tell which one the handler got).
 */
const asyncSchema: StandardSchemaV1<{ n: string }, { n: number }> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: async (value) => {
      await new Promise((r) => setImmediate(r));
      const n = (value as { n?: unknown } | null)?.n;
      if (typeof n !== 'string' || !/^\d+$/.test(n)) {
        return { issues: [{ message: 'not a numeric string', path: ['n'] }] };
      }
      return { value: { n: Number(n) } };
    },
  },
};

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
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '60s' })));
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
  assert.equal(worker.counts.succeeded, 2000);
  assert.equal(worker.counts.failed + worker.counts.retried + worker.counts.expired, 0);
  // What Redis stored, not what the worker counted: every task has its succeeded record.
  const stored = await Promise.all(handles.map((h) => app.getTask(h.id)));
  stored.forEach((info, i) => {
    assert.equal(info?.state, 'succeeded', `task ${i}`);
    assert.equal(info?.result, i * 2, `task ${i}`);
    assert.equal(info?.attempt, 1, `task ${i}`);
    assert.equal(info?.worker, worker.name, `task ${i}`);
  });
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
  await Promise.all(handles.map((h) => h.result({ timeout: '30s' })));
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
  await assert.rejects(h.result({ timeout: '30s' }), (err: unknown) => {
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
  assert.equal(info?.attempt, 1);
  assert.equal(info?.error?.name, 'RangeError');
  assert.equal(info?.error?.message, 'out of range');
  const [dead, ...more] = await app.deadLetters.list('default');
  assert.equal(more.length, 0);
  assert.equal(dead?.taskId, h.id);
  assert.equal(dead?.reason, 'max-attempts', 'maxAttempts defaults to 1: no retry');
  assert.equal(worker.counts.failed, 1);
  assert.equal(worker.counts.succeeded + worker.counts.retried, 0);
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
  assert.equal(await h.result({ timeout: '30s' }), 'done');
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
  const hb = await tb.enqueue({});
  const ha = await ta.enqueue({});
  // One XREADGROUP reads every stream a worker serves. 'a' was written after 'b', so the read that
  // brought 'a' would have brought 'b' too if the worker served it: its result is the signal.
  assert.equal(await ha.result({ timeout: '30s' }), 'a');
  assert.equal((await hb.info())?.state, 'queued');
  const redis = server().client();
  const streamB = app.keys.stream.key({ queue: 'b' });
  assert.deepEqual(await redis.xinfo('GROUPS', streamB), [], 'nobody ever read queue b');
  assert.equal(await redis.xlen(streamB), 1);
  await worker.stop();
  assert.equal((await hb.info())?.state, 'queued');
  assert.throws(() => new Worker(app, { queues: ['c'] }), UnknownQueueError);
  assert.throws(() => new Worker(app, { concurrency: 0 }), OptionsError);
});

test('arguments that no longer match the schema fail the task with the field named', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'typed', schema: z.object({ n: z.number() }), handler: ({ n }) => n });
  const redis = server().client();
  const mismatch = await redis.xadd(
    app.keys.stream.key({ queue: 'default' }),
    '*',
    'm',
    '["typed",{"n":"one"}]',
  );
  const unknown = await redis.xadd(app.keys.stream.key({ queue: 'default' }), '*', 'm', '["nope",{}]');
  const garbage = await redis.xadd(app.keys.stream.key({ queue: 'default' }), '*', 'm', '{not json');
  // Unknown tasks are dead-lettered at once here (the default leaves them for another worker).
  const worker = new Worker(app, { logger: silentLogger(), unknownTasks: 'dead-letter' });
  await worker.start();
  const ok = await t.enqueue({ n: 7 });
  assert.equal(await ok.result({ timeout: '30s' }), 7);
  // Waited for in Redis (the dead letters), not in the worker's own counters.
  await until(async () => (await app.deadLetters.count('default')) === 3, 30_000, 'three dead letters');
  await worker.stop();
  const mismatchInfo = await app.getTask(`${mismatch}@default`);
  assert.equal(mismatchInfo?.state, 'failed');
  assert.equal(mismatchInfo?.error?.code, 'E_TASK_ARGS');
  assert.match(mismatchInfo?.error?.message ?? '', /invalid arguments for task "typed": n: /);
  const mismatchDead = await app.deadLetters.get('default', `${mismatch}@default`);
  assert.equal(mismatchDead?.reason, 'invalid-args');
  assert.equal(mismatchDead?.task, 'typed');
  assert.equal(mismatchDead?.message, '["typed",{"n":"one"}]', 'kept as written, for a retry');
  assert.equal((await app.getTask(`${unknown}@default`))?.error?.code, 'E_UNKNOWN_TASK');
  assert.equal((await app.deadLetters.get('default', `${unknown}@default`))?.reason, 'unknown-task');
  assert.equal((await app.getTask(`${garbage}@default`))?.error?.code, 'E_POISON');
  assert.equal((await app.deadLetters.get('default', `${garbage}@default`))?.reason, 'undecodable');
  assert.equal((await ok.info())?.state, 'succeeded');
  assert.equal(await redis.xlen(app.keys.stream.key({ queue: 'default' })), 0);
});

test('a handler gets its id, queue, attempt, an AbortSignal and a bound logger', async () => {
  const app = newApp(server());
  const { logger, lines } = captureLogger();
  const t = app.task({
    name: 'ctx',
    schema: z.object({ fail: z.boolean() }),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 10 },
    handler: ({ fail }, ctx) => {
      ctx.log.info({ step: 'inside' }, 'hello from the handler');
      if (fail && ctx.attempt === 1) throw new Error('once');
      return {
        id: ctx.id,
        queue: ctx.queue,
        attempt: ctx.attempt,
        aborted: ctx.signal.aborted,
        signal: ctx.signal instanceof AbortSignal,
      };
    },
  });
  const worker = new Worker(app, { logger, promoteIntervalMs: 10 });
  await worker.start();
  const h = await t.enqueue({ fail: false });
  const again = await t.enqueue({ fail: true });
  assert.deepEqual(await h.result({ timeout: '30s' }), {
    id: h.id,
    queue: 'default',
    attempt: 1,
    aborted: false,
    signal: true,
  });
  assert.equal(((await again.result({ timeout: '30s' })) as { attempt: number }).attempt, 2);
  await worker.stop();
  const fromHandler = lines().filter((l) => l.msg === 'hello from the handler');
  // The fields the bound logger adds, one line per attempt (sorted: the two tasks run concurrently).
  const bound = (l: LogLine): string =>
    JSON.stringify([l.taskId, l.attempt, l.task, l.queue, l.worker, l.step, l.level]);
  const expected = [
    [h.id, 1],
    [again.id, 1],
    [again.id, 2],
  ].map(([taskId, attempt]) =>
    JSON.stringify([taskId, attempt, 'ctx', 'default', worker.name, 'inside', 30]),
  );
  assert.deepEqual(fromHandler.map(bound).sort(), expected.sort());
  // The worker's own line for the task carries the same fields.
  const succeeded = lines().find((l) => l.msg === 'task succeeded' && l.taskId === h.id);
  assert.equal(succeeded?.queue, 'default');
  assert.equal(succeeded?.attempt, 1);
});

test('an asynchronous schema (validate returns a Promise) is awaited by the worker', async () => {
  const app = newApp(server());
  const t = app.task({
    name: 'async.schema',
    schema: asyncSchema,
    handler: ({ n }) => ({ n, type: typeof n }),
  });
  const redis = server().client();
  // Written by hand, so the worker's check is the only one: one valid, one that fails the schema.
  const stream = app.keys.stream.key({ queue: 'default' });
  const good = await redis.xadd(stream, '*', 'm', '["async.schema",{"n":"41"}]');
  const bad = await redis.xadd(stream, '*', 'm', '["async.schema",{"n":"forty-one"}]');
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  // The handler gets the schema's output (a number parsed from the string), not the raw input.
  assert.deepEqual(await app.waitForResult(`${good}@default`, { timeout: '30s' }), { n: 41, type: 'number' });
  await assert.rejects(app.waitForResult(`${bad}@default`, { timeout: '30s' }), /n: not a numeric string/);
  assert.equal((await app.deadLetters.get('default', `${bad}@default`))?.reason, 'invalid-args');
  await worker.stop();
  // And through enqueue, which awaits it too.
  const h = await t.enqueue({ n: '7' });
  assert.deepEqual(
    JSON.parse((await redis.xrange(stream, h.id.split('@')[0] as string, '+'))[0]?.[1][1] as string),
    ['async.schema', { n: '7' }],
  );
});
