// Priorities (issue 14, point 3) on Redis Streams, with real workers on a real Redis: a queue's
// levels above 0 are streams of their own, read in the worker's one XREADGROUP, higher first; the
// level rides in the message, so bulk enqueues, delays, retries, hand-backs, dead-letter retries,
// revoke, purge and lookup keep it. The cluster leg (test/cluster/priorities.test.ts) runs the tests
// not marked `skip: onCluster`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { OptionsError, TasukiError, Worker, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { queueLag } from '../../src/results/lag.js';
import { newApp, onCluster, until, useRedis } from '../support/redis.js';

const server = useRedis();
const quiet = { logger: silentLogger(), promoteIntervalMs: 20 };

/** A promise and its resolve, for a handler the test lets go of. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

/** A task `job` that records the names it runs, in order; `hold` holds the run of `holdName`. */
function recorder(app: Tasuki, opts: { holdName?: string; maxAttempts?: number; failOnce?: string } = {}) {
  const ran: string[] = [];
  const hold = gate();
  const held = gate();
  const failed = new Set<string>();
  const job = app.task({
    name: 'job',
    schema: z.object({ name: z.string() }),
    maxAttempts: opts.maxAttempts ?? 1,
    backoff: { type: 'fixed', delay: 50, jitter: false },
    handler: async ({ name }, ctx) => {
      if (name === opts.failOnce && !failed.has(name)) {
        failed.add(name);
        throw new Error(`${name} fails once`);
      }
      ran.push(name);
      if (name === opts.holdName) {
        held.open();
        await hold.opened;
      }
      return ctx.id;
    },
  });
  return { job, ran, hold, held };
}

/** `prefix1`, `prefix2`, ... */
function names(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

async function worker(app: Tasuki, t: { after(fn: () => Promise<void>): void }, concurrency = 1) {
  const w = new Worker(app, { ...quiet, concurrency });
  await w.start();
  t.after(() => w.stop());
  return w;
}

test('a backlog of level 0, then levels 3 and 1: a worker of concurrency 1 runs 3, then 1, then 0', async (t) => {
  const app = newApp(server());
  const { job, ran } = recorder(app);
  await job.enqueueMany(names('low', 6).map((name) => ({ args: { name } })));
  for (const name of names('mid', 3)) await job.enqueue({ name }, { priority: 1 });
  const high = await job.enqueueMany(
    names('high', 3).map((name) => ({ args: { name }, options: { priority: 3 } })),
  );
  assert.equal(new Set(high.map((h) => h.id)).size, 3, 'each task has its own id');
  assert.match(high[0]!.id, /^\d+-\d+p3@default$/, 'a task of level 3 is named by its entry on that level');
  assert.equal((await app.getTask(high[0]!.id))?.priority, 3);
  const stats = await app.queueStats('default');
  assert.equal(stats.waiting, 12, 'the stats count every level');
  const onlyHigh = newApp(server());
  const urgent = recorder(onlyHigh).job;
  await urgent.enqueue({ name: 'alone' }, { priority: 3 });
  const later = Date.now() + 60_000;
  assert.ok(
    (await queueLag(await onlyHigh.redis(), onlyHigh.keys, 'default', later)) >= 60_000,
    'lag sees levels',
  );

  await worker(app, t);
  await until(() => ran.length === 12, 20_000, 'all 12 tasks to run');
  assert.deepEqual(ran, [...names('high', 3), ...names('mid', 3), ...names('low', 6)]);
  assert.equal((await app.getTask(high[0]!.id))?.state, 'succeeded');
});

test('a running worker hears of a new level (control stream) and takes it before the level 0 backlog', async (t) => {
  const app = newApp(server());
  const { job, ran, hold, held } = recorder(app, { holdName: 'low1' });
  await job.enqueueMany(names('low', 5).map((name) => ({ args: { name } })));
  await worker(app, t);
  // low1 runs; low2-5 wait in the worker's buffer, and its next read waits on the queue's stream.
  await held.opened;
  const high = await job.enqueueMany(
    names('high', 3).map((name) => ({ args: { name }, options: { priority: 3 } })),
  );
  // The first task of level 3 made its stream and said so on the control stream: the worker hears
  // it, ends its read and reads level 3 too. The tasks are then its, ahead of low2-5.
  for (const h of high) {
    await until(
      async () => (await app.getTask(h.id))?.state === 'active',
      10_000,
      `the worker to fetch ${h.id}`,
    );
  }
  hold.open();
  await until(() => ran.length === 8, 20_000, 'all 8 tasks to run');
  assert.deepEqual(ran, ['low1', ...names('high', 3), ...names('low', 5).slice(1)]);
});

test('bulk with mixed levels, a delayed level 3 task and a retried level 2 task keep their levels', async (t) => {
  const app = newApp(server());
  const { job, ran, hold, held } = recorder(app, { maxAttempts: 2, failOnce: 'retried', holdName: 'low1' });
  const bulk = await job.enqueueMany([
    { args: { name: 'b0' } },
    { args: { name: 'b2' }, options: { priority: 2 } },
    { args: { name: 'b1' }, options: { priority: 1 } },
    { args: { name: 'b3' }, options: { priority: 3 } },
  ]);
  assert.deepEqual(
    await Promise.all(bulk.map(async (h) => (await app.getTask(h.id))?.priority ?? 0)),
    [0, 2, 1, 3],
  );
  await worker(app, t);
  await until(() => ran.length === 4, 10_000, 'the bulk to run');
  assert.deepEqual(ran, ['b3', 'b2', 'b1', 'b0'], 'one read, higher levels first');

  // The worker busy with level 0: a delayed level 3 task, once promoted, goes before the rest.
  ran.length = 0;
  await job.enqueueMany(names('low', 5).map((name) => ({ args: { name } })));
  await held.opened;
  const late = await job.enqueue({ name: 'late' }, { delay: '100ms', priority: 3 });
  assert.equal((await app.getTask(late.id))?.state, 'delayed');
  await until(
    async () => (await app.getTask(late.id))?.state === 'active',
    10_000,
    'the promoted task to be fetched',
  );
  assert.equal((await app.getTask(late.id))?.priority, 3, 'promoted onto level 3');
  const retried = await job.enqueue({ name: 'retried' }, { priority: 2 });
  hold.open();
  assert.equal(await late.result({ timeout: '10s' }), late.id);
  assert.equal(await retried.result({ timeout: '10s' }), retried.id);
  await until(() => ran.length === 7, 20_000, 'everything to run');
  assert.deepEqual(ran.slice(0, 2), ['low1', 'late'], 'the promoted task did not wait for the backlog');
  const info = await app.getTask(retried.id);
  assert.equal(info?.attempt, 2, 'the level 2 task ran twice');
});

test('the starvation rule: a backlog of level 3 takes most turns, but level 0 is never left behind', async (t) => {
  const app = newApp(server());
  const ran: string[] = [];
  // A few ms each, so the worker's next reads come back while level 3 tasks are still waiting.
  const job = app.task({
    name: 'job',
    schema: z.object({ name: z.string() }),
    handler: async ({ name }) => {
      ran.push(name);
      await new Promise((r) => setTimeout(r, 3));
    },
  });
  await job.enqueueMany(names('high', 60).map((name) => ({ args: { name }, options: { priority: 3 } })));
  await job.enqueueMany(names('low', 5).map((name) => ({ args: { name } })));
  await worker(app, t);
  await until(() => ran.length === 65, 20_000, 'all 65 tasks to run');
  // Strict within a read: the first read's level 3 tasks (a batch: 9 for concurrency 1) go first.
  assert.deepEqual(ran.slice(0, 9), names('high', 9));
  // Then each task of level 0 waiting in the worker goes after at most 4 newer ones of level 3
  // (the worker's fair turn, FAIR_START_AFTER): low5 at index 9 + 5 × 5 - 1 at the latest.
  const lastLow = ran.lastIndexOf('low5');
  assert.ok(lastLow < 9 + 5 * 5, `the last level 0 task ran at ${lastLow}, not starved: ${ran.join(' ')}`);
  assert.deepEqual(
    ran.filter((r) => r.startsWith('low')),
    names('low', 5),
    'level 0 in order',
  );
  assert.deepEqual(
    ran.filter((r) => r.startsWith('high')),
    names('high', 60),
    'level 3 in order',
  );
});

test(
  'a retried task goes back to its level (each attempt delivered from it)',
  { skip: onCluster },
  async (t) => {
    const app = newApp(server());
    const seen: number[] = [];
    const flaky = app.task({
      name: 'flaky',
      schema: z.object({}),
      maxAttempts: 3,
      backoff: { type: 'fixed', delay: 30, jitter: false },
      handler: (_args, ctx) => {
        seen.push(ctx.priority); // the level of the stream it was delivered from
        if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt}`);
        return ctx.attempt;
      },
    });
    await worker(app, t);
    const h = await flaky.enqueue({}, { priority: 2 });
    assert.equal(await h.result({ timeout: '10s' }), 3);
    assert.deepEqual(seen, [2, 2, 2], 'every attempt ran from the level 2 stream');
  },
);

test(
  'worker.stop hands unstarted tasks back to their level; the next worker runs them first',
  { skip: onCluster },
  async () => {
    const app = newApp(server());
    const { job, ran, hold, held } = recorder(app, { holdName: 'high1' });
    await job.enqueueMany(names('low', 5).map((name) => ({ args: { name } })));
    const high = await job.enqueueMany(
      names('high', 4).map((name) => ({ args: { name }, options: { priority: 3 } })),
    );
    const first = new Worker(app, { ...quiet, concurrency: 1 });
    await first.start();
    await held.opened;
    const closing = first.stop();
    hold.open();
    await closing;
    assert.deepEqual(ran, ['high1'], 'the first worker ran one task');
    for (const h of high.slice(1)) {
      const info = await app.getTask(h.id);
      assert.equal(info?.state, 'queued', `${h.id} is back on the queue`);
      assert.equal(info?.priority, 3, `${h.id} is back on level 3`);
    }
    const second = new Worker(app, { ...quiet, concurrency: 1 });
    await second.start();
    try {
      await until(() => ran.length === 9, 10_000, 'all tasks to run');
    } finally {
      await second.stop();
    }
    assert.deepEqual(ran, ['high1', 'high2', 'high3', 'high4', ...names('low', 5)]);
  },
);

test(
  'a long task on a level keeps its claim (renewed on its stream); a cancel reaches it there',
  { skip: onCluster },
  async (t) => {
    const app = newApp(server());
    const runs: string[] = [];
    const started = gate();
    const job = app.task({
      name: 'long',
      schema: z.object({ name: z.string() }),
      handler: async ({ name }, ctx) => {
        runs.push(name);
        if (name === 'cancelled') {
          started.open();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          return 'stopped';
        }
        // Three claim idle times: another worker would take it over if its claim were not renewed.
        await new Promise((r) => setTimeout(r, 900));
        return ctx.priority;
      },
    });
    const opts = { ...quiet, concurrency: 2, claimIdle: 300 };
    const workers = [new Worker(app, opts), new Worker(app, opts)];
    await Promise.all(workers.map((w) => w.start()));
    t.after(() => Promise.all(workers.map((w) => w.stop())).then(() => undefined));
    const long = await job.enqueue({ name: 'long' }, { priority: 2 });
    assert.equal(await long.result({ timeout: '10s' }), 2);
    assert.deepEqual(runs, ['long'], 'run once: its claim held');

    const victim = await job.enqueue({ name: 'cancelled' }, { priority: 3 });
    await started.opened;
    assert.equal((await app.cancel(victim.id, { by: 'test' })).outcome, 'cancelling');
    await until(async () => (await app.getTask(victim.id))?.state === 'cancelled', 10_000, 'the cancel');
  },
);

test('a task of a dead worker is reclaimed from its level stream', { skip: onCluster }, async (t) => {
  const app = newApp(server());
  const { job, ran } = recorder(app);
  const h = await job.enqueue({ name: 'orphan' }, { priority: 1 });
  // A worker that fetched it and died: a consumer of the level's group that never settles.
  const redis = server().client();
  t.after(() => redis.quit().then(() => undefined));
  const stream = app.keys.levelStream.key({ queue: 'default', level: '1' });
  const got = (await redis.xreadgroup('GROUP', 'tasuki', 'ghost', 'COUNT', 10, 'STREAMS', stream, '>')) as
    [string, unknown[]][] | null;
  assert.equal(got?.[0]?.[1].length, 1, 'the ghost holds it');
  assert.equal((await app.getTask(h.id))?.state, 'active');
  const w = new Worker(app, { ...quiet, concurrency: 1, claimIdle: '300ms' });
  await w.start();
  t.after(() => w.stop());
  assert.equal(await h.result({ timeout: '10s' }), h.id);
  assert.deepEqual(ran, ['orphan']);
});

test('revoke and getTask find a task on its level; purge counts every level', async () => {
  const app = newApp(server());
  const { job } = recorder(app);
  const queued = await job.enqueue({ name: 'q' }, { priority: 3 });
  assert.deepEqual(await app.getTask(queued.id), {
    id: queued.id,
    queue: 'default',
    state: 'queued',
    priority: 3,
  });
  assert.deepEqual(await app.revoke(queued.id), { id: queued.id, outcome: 'revoked', was: 'queued' });
  assert.equal((await app.getTask(queued.id))?.state, 'revoked');

  await job.enqueueMany(names('low', 5).map((name) => ({ args: { name } })));
  await job.enqueueMany(names('two', 3).map((name) => ({ args: { name }, options: { priority: 2 } })));
  await job.enqueue({ name: 'd3' }, { delay: '1h', priority: 3 });
  await job.enqueue({ name: 'd0' }, { delay: '1h' });
  assert.deepEqual(await app.purge('default'), { queue: 'default', waiting: 8, delayed: 2 });
  const stats = await app.queueStats('default');
  assert.equal(stats.inStream + stats.delayed, 0, 'nothing left on any level');
});

test('a dead letter retried goes back to its level', { skip: onCluster }, async (t) => {
  const app = newApp(server());
  let fail = true;
  const task = app.task({
    name: 'once',
    schema: z.object({}),
    handler: () => {
      if (fail) throw new Error('first run fails');
      return 'ok';
    },
  });
  const w = await worker(app, t);
  const h = await task.enqueue({}, { priority: 2 });
  await assert.rejects(h.result({ timeout: '10s' }));
  await w.stop();
  fail = false;
  assert.deepEqual(await app.deadLetters.retry('default', { all: true }), { retried: 1, skipped: 0 });
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'queued');
  assert.equal(info?.priority, 2);
  await worker(app, t);
  assert.equal(await h.result({ timeout: '10s' }), 'ok');
});

test('priority: out of range or not an integer is refused with the value; a definition may set a default', async (t) => {
  const app = newApp(server());
  const { job } = recorder(app);
  for (const bad of [4, -1, 1.5, '2', null]) {
    await assert.rejects(job.enqueue({ name: 'x' }, { priority: bad as number }), (err: unknown) => {
      assert.ok(err instanceof OptionsError, String(err));
      assert.match(err.message, /priority/);
      assert.match(err.message, new RegExp(JSON.stringify(bad).replace(/[.[\]]/g, '\\$&')));
      assert.match(err.message, /integer from 0 .* to 3/);
      return true;
    });
  }
  await assert.rejects(
    job.enqueueMany([{ args: { name: 'ok' } }, { args: { name: 'x' }, options: { priority: 9 } }]),
    /\[1\]\.priority|priority/,
  );
  assert.throws(
    () => app.task({ name: 'bad', schema: z.object({}), priority: 7, handler: () => 1 }),
    (err: unknown) => err instanceof TasukiError && /priority/.test(err.message) && /7/.test(err.message),
  );
  const urgent = app.task({
    name: 'urgent',
    schema: z.object({}),
    priority: 2,
    handler: (_a, ctx) => ctx.id,
  });
  const h = await urgent.enqueue({});
  assert.equal((await app.getTask(h.id))?.priority, 2, 'the definition default');
  const low = await urgent.enqueue({}, { priority: 0 });
  assert.equal((await app.getTask(low.id))?.priority, undefined, 'the option overrides it');
  await worker(app, t);
  assert.equal(await h.result({ timeout: '10s' }), h.id);
  assert.equal(await low.result({ timeout: '10s' }), low.id);
});
