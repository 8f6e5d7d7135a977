import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { RetryLater, TaskFailedError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runCli } from '../support/cli.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();
const fast = { logger: silentLogger(), promoteIntervalMs: 10 };

test('a task that always fails is dead-lettered after exactly maxAttempts, with backoff in bounds; dlq retry brings it back', async () => {
  const app = newApp(server());
  const starts: number[] = [];
  let healthy = false;
  const flaky = app.task({
    name: 'flaky',
    schema: z.object({ order: z.number() }),
    maxAttempts: 4,
    backoff: { type: 'exponential', delay: 100, maxDelay: 1000 },
    handler: ({ order }) => {
      starts.push(Date.now());
      if (!healthy) throw new Error(`payment service down for order ${order}`);
      return 'paid';
    },
  });
  const worker = new Worker(app, fast);
  await worker.start();
  const h = await flaky.enqueue({ order: 7 });
  await assert.rejects(h.result({ timeout: '10s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.remote.message, 'payment service down for order 7');
    return true;
  });
  assert.equal(starts.length, 4, 'exactly maxAttempts attempts');
  // Exponential from 100 ms with jitter in [d/2, d]: gaps in [50,100], [100,200], [200,400] (+ slack).
  const bounds = [
    [50, 100],
    [100, 200],
    [200, 400],
  ];
  starts.slice(1).forEach((t, i) => {
    const gap = t - (starts[i] as number);
    const [lo, hi] = bounds[i] as [number, number];
    assert.ok(gap >= lo - 5 && gap <= hi + 150, `gap ${i + 1} was ${gap} ms, expected ${lo}-${hi}`);
  });
  assert.deepEqual(worker.counts, { succeeded: 0, failed: 1, retried: 3, expired: 0 });
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'failed');
  assert.equal(info?.attempt, 4);

  const [dead] = await app.deadLetters.list('default');
  assert.equal(dead?.taskId, h.id);
  assert.equal(dead?.reason, 'max-attempts');
  assert.equal(dead?.attempts, 4);
  assert.equal(dead?.task, 'flaky');
  assert.equal(dead?.error.message, 'payment service down for order 7');
  assert.match(dead?.error.stack ?? '', /Error: payment service down/);
  assert.ok((dead?.failedAt ?? 0) >= (starts[3] as number));

  // The CLI lists it and brings it back; it then succeeds under the same id.
  const env = { REDIS_URL: server().url };
  const prefix = ['--queue', 'default', '--prefix', app.keys.space.prefix];
  const list = await runCli(['dlq', 'list', ...prefix], env);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`${h.id}  flaky  max-attempts  attempts=4`));
  const show = await runCli(['dlq', 'show', ...prefix, '--id', h.id, '--json'], env);
  assert.equal((JSON.parse(show.stdout) as { reason: string }).reason, 'max-attempts');
  const missing = await runCli(['dlq', 'show', ...prefix, '--id', '1-0@default'], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no dead letter "1-0@default" in queue "default"/);
  healthy = true;
  const retried = await runCli(['dlq', 'retry', ...prefix, '--id', h.id], env);
  assert.equal(retried.code, 0, retried.stderr);
  assert.match(retried.stdout, /retried 1, skipped 0/);
  assert.equal(await h.result({ timeout: '5s' }), 'paid');
  assert.equal(await app.deadLetters.count('default'), 0);
  await worker.stop();
});

test('retryOn: other errors go to the dead letters at once; RetryLater sets its own delay', async () => {
  class Transient extends Error {}
  const app = newApp(server());
  let attempts = 0;
  const picky = app.task({
    name: 'picky',
    schema: z.object({ kind: z.enum(['transient', 'fatal', 'later']) }),
    maxAttempts: 3,
    backoff: { type: 'fixed', delay: 10 },
    retryOn: [Transient],
    handler: ({ kind }, ctx) => {
      attempts++;
      if (kind === 'fatal') throw new TypeError('bad data');
      if (kind === 'later' && ctx.attempt === 1) throw new RetryLater('rate limited', { delay: 300 });
      if (kind === 'transient' && ctx.attempt < 3) throw new Transient('blip');
      return ctx.attempt;
    },
  });
  const worker = new Worker(app, fast);
  await worker.start();
  const fatal = await picky.enqueue({ kind: 'fatal' });
  await assert.rejects(fatal.result({ timeout: '5s' }), /bad data/);
  assert.equal((await app.getTask(fatal.id))?.attempt, 1);
  assert.equal((await app.deadLetters.get('default', fatal.id))?.reason, 'not-retryable');
  attempts = 0;
  assert.equal(await (await picky.enqueue({ kind: 'transient' })).result({ timeout: '5s' }), 3);
  assert.equal(attempts, 3);
  const at = Date.now();
  const later = await picky.enqueue({ kind: 'later' });
  await until(async () => (await later.info())?.state === 'retrying', 5000, 'retrying');
  const retrying = await later.info();
  assert.ok((retrying as { error?: { message: string } }).error?.message === 'rate limited');
  assert.equal(await later.result({ timeout: '5s' }), 2);
  assert.ok(Date.now() - at >= 300, `retried after ${Date.now() - at} ms`);
  await worker.stop();
});

test('poison messages go to the dead letters with a clear reason; the worker keeps serving', async () => {
  const app = newApp(server());
  const good = app.task({ name: 'good', schema: z.object({ n: z.number() }), handler: ({ n }) => n + 1 });
  const redis = server().client();
  const stream = app.keys.stream.key({ queue: 'default' });
  const garbage = await redis.xadd(stream, '*', 'm', '\u0000\u0001 not json');
  const noField = await redis.xadd(stream, '*', 'x', 'y');
  const unknown = await redis.xadd(stream, '*', 'm', '["gone.task",{}]');
  const invalid = await redis.xadd(stream, '*', 'm', '["good",{"n":"seven"}]');
  const worker = new Worker(app, fast);
  await worker.start();
  const handles = await good.enqueueMany([1, 2, 3].map((n) => ({ args: { n } })));
  assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '5s' }))), [2, 3, 4]);
  await until(async () => (await app.deadLetters.count('default')) === 4, 5000, 'four dead letters');
  await worker.stop();
  const reasons: Record<string, [string, string]> = {};
  for (const d of await app.deadLetters.list('default')) {
    reasons[d.taskId.split('@')[0] as string] = [d.reason, d.error.message];
  }
  assert.equal(reasons[garbage as string]?.[0], 'undecodable');
  assert.match(reasons[garbage as string]?.[1] ?? '', /not JSON/);
  assert.equal(reasons[noField as string]?.[0], 'undecodable');
  assert.match(reasons[noField as string]?.[1] ?? '', /no field "m"/);
  assert.equal(reasons[unknown as string]?.[0], 'unknown-task');
  assert.match(reasons[unknown as string]?.[1] ?? '', /unknown task "gone\.task"/);
  assert.equal(reasons[invalid as string]?.[0], 'invalid-args');
  assert.match(reasons[invalid as string]?.[1] ?? '', /n: /);
  assert.equal(await redis.xlen(stream), 0);
  // An undecodable message cannot be retried; purge clears them.
  assert.deepEqual(await app.deadLetters.retry('default', { ids: [`${garbage}@default`] }), {
    retried: 0,
    skipped: 1,
  });
  assert.equal(await app.deadLetters.purge('default', { all: true }), 4);
});

test('hard time limit: the stuck attempt fails and the worker keeps serving; soft limit aborts the signal', async () => {
  const app = newApp(server());
  const stuck = app.task({
    name: 'stuck',
    schema: z.object({}),
    timeLimit: 200,
    handler: () => new Promise<never>(() => undefined),
  });
  const polite = app.task({
    name: 'polite',
    schema: z.object({}),
    softTimeLimit: 100,
    timeLimit: 5000,
    handler: (_a, ctx) =>
      new Promise<string>((resolve) =>
        ctx.signal.addEventListener('abort', () => resolve('stopped cleanly')),
      ),
  });
  const quick = app.task({ name: 'quick', schema: z.object({}), handler: () => 'quick' });
  const worker = new Worker(app, { ...fast, concurrency: 1 });
  await worker.start();
  const s = await stuck.enqueue({});
  const q = await quick.enqueue({});
  await assert.rejects(s.result({ timeout: '5s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.match(err.remote.message, /time limit of 200 ms/);
    return true;
  });
  assert.equal(await q.result({ timeout: '5s' }), 'quick');
  assert.equal((await app.getTask(s.id))?.error?.code, 'E_TIME_LIMIT');
  assert.equal(await (await polite.enqueue({})).result({ timeout: '5s' }), 'stopped cleanly');
  await worker.stop();
});

test('an expired task is not run and is recorded as expired', async () => {
  const app = newApp(server());
  let ran = false;
  const t = app.task({ name: 'exp', schema: z.object({}), handler: () => (ran = true) });
  const h = await t.enqueue({}, { expires: 50 });
  await new Promise((r) => setTimeout(r, 100));
  const worker = new Worker(app, fast);
  await worker.start();
  await until(async () => (await h.info())?.state === 'expired', 5000, 'expired');
  await worker.stop();
  assert.equal(ran, false);
  assert.equal((await h.info())?.error?.code, 'E_EXPIRED');
  await assert.rejects(h.result({ timeout: 100 }), /not started before its expiry/);
});

test('a long task on a live worker is never handed to another worker; a dead holder is', async () => {
  const app = newApp(server());
  let runs = 0;
  const long = app.task({
    name: 'long',
    schema: z.object({}),
    handler: async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 1500));
      return 'done';
    },
  });
  const opts = { ...fast, claimIdle: 300, reclaimInterval: 50 };
  const a = new Worker(app, opts);
  const b = new Worker(app, opts);
  await a.start();
  const h = await long.enqueue({});
  await until(async () => (await h.info())?.state === 'active', 5000, 'active');
  await b.start();
  assert.equal(await h.result({ timeout: '5s' }), 'done');
  assert.equal(runs, 1, 'ran once despite running 5x longer than claimIdle');
  await Promise.all([a.stop(), b.stop()]);

  // A holder that never comes back: its entry is taken over; after maxDeliveries it is dead-lettered.
  const redis = server().client();
  const stream = app.keys.stream.key({ queue: 'default' });
  const h2 = await long.enqueue({});
  const entry = h2.id.split('@')[0] as string;
  await redis.xreadgroup('GROUP', 'tasuki', 'ghost', 'COUNT', 1, 'STREAMS', stream, '>');
  for (let i = 0; i < 5; i++) await redis.xclaim(stream, 'tasuki', 'ghost', 0, entry);
  const c = new Worker(app, { ...opts, maxDeliveries: 5 });
  await c.start();
  await assert.rejects(h2.result({ timeout: '5s' }), /delivered 7 times without finishing/);
  assert.equal((await app.deadLetters.get('default', h2.id))?.reason, 'max-deliveries');
  const h3 = await long.enqueue({});
  await redis.xreadgroup('GROUP', 'tasuki', 'ghost', 'COUNT', 1, 'STREAMS', stream, '>');
  assert.equal(await h3.result({ timeout: '5s' }), 'done', 'taken over from the dead holder and run');
  await c.stop();
});
