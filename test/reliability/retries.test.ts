import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  parseTaskId,
  RetryLater,
  TaskFailedError,
  TimeLimitError,
  Worker,
  type Tasuki,
  type TaskRecord,
} from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { runCli } from '../support/cli.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();
const fast = { logger: silentLogger(), promoteIntervalMs: 10 };

/** The task record as Redis stores it (with `retryAt`, which `getTask` does not show). */
async function storedRecord(app: Tasuki, id: string): Promise<TaskRecord | null> {
  const { local, queue } = parseTaskId(id);
  const raw = await server()
    .client()
    .get(app.keys.result.key({ queue, task: local }));
  return raw === null ? null : (JSON.parse(raw) as TaskRecord);
}

/** Makes the stream and the consumer group, as a worker would, without starting one. */
async function ensureGroup(app: Tasuki, queue = 'default'): Promise<string> {
  const stream = app.keys.stream.key({ queue });
  await server().client().xgroup('CREATE', stream, 'tasuki', '0', 'MKSTREAM');
  return stream;
}

test('a task that always fails is dead-lettered after exactly maxAttempts, with backoff in bounds; dlq retry brings it back', async () => {
  const app = newApp(server());
  const starts: number[] = [];
  /** The delay each retry was scheduled with: its `retrying` record's retryAt - finishedAt. */
  const scheduled: number[] = [];
  const previous: (TaskRecord | null)[] = [];
  let healthy = false;
  const flaky = app.task({
    name: 'flaky',
    schema: z.object({ order: z.number() }),
    maxAttempts: 4,
    backoff: { type: 'exponential', delay: 100, maxDelay: 1000 },
    handler: async ({ order }, ctx) => {
      starts.push(Date.now());
      // The record of the attempt before is still the stored one: it is replaced only when this
      // attempt finishes. So it is read here with no race against a 'retrying' window.
      if (ctx.attempt > 1 && !healthy) {
        const r = await storedRecord(app, ctx.id);
        previous.push(r);
        if (r?.retryAt !== undefined) scheduled.push(r.retryAt - r.finishedAt);
      }
      if (healthy) return 'paid';
      const err = new Error(`payment service down for order ${order}`);
      // Format the stack now (V8 keeps it): the worker reads it between stamping the record's
      // finishedAt and computing retryAt, and the first source-mapped stack under tsx takes long.
      void err.stack;
      throw err;
    },
  });
  const worker = new Worker(app, fast);
  await worker.start();
  const h = await flaky.enqueue({ order: 7 });
  await assert.rejects(h.result({ timeout: '30s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.remote.message, 'payment service down for order 7');
    return true;
  });
  assert.equal(starts.length, 4, 'exactly maxAttempts attempts');
  assert.deepEqual(
    previous.map((r) => [r?.state, r?.attempt, r?.error?.message]),
    [1, 2, 3].map((n) => ['retrying', n, 'payment service down for order 7']),
  );
  // Exponential from 100 ms with jitter in [d/2, d]: delays in [50,100], [100,200], [200,400]. These
  // are the delays the worker chose, read from what it stored, so they do not depend on how fast the
  // retry ran. The slack above covers the little work (and, on a loaded machine, the descheduling)
  // between the two clock reads that stamp finishedAt and retryAt; backoffDelay itself is pinned
  // exactly in test/unit/backoff.test.ts.
  const bounds = [
    [50, 100],
    [100, 200],
    [200, 400],
  ] as const;
  assert.equal(scheduled.length, 3);
  scheduled.forEach((d, i) => {
    const [lo, hi] = bounds[i] as readonly [number, number];
    assert.ok(d >= lo - 1 && d <= hi + 50, `retry ${i + 1} scheduled after ${d} ms, expected ${lo}-${hi}`);
  });
  // And no attempt ran before its retry was due. (No upper bound on the gaps: promotion and fetch
  // add a few ms normally and far more on a loaded machine; the chosen delays are checked above.)
  starts.slice(1).forEach((t, i) => {
    const gap = t - (starts[i] as number);
    assert.ok(gap >= (scheduled[i] as number) - 2, `attempt ${i + 2} ran ${gap} ms after the one before`);
  });
  assert.equal(worker.counts.failed, 1);
  assert.equal(worker.counts.retried, 3);
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
  assert.equal(await h.result({ timeout: '30s' }), 'paid');
  assert.equal(await app.deadLetters.count('default'), 0);
  assert.equal((await app.getTask(h.id))?.state, 'succeeded');
  await worker.stop();
});

test('retryOn: other errors go to the dead letters at once; RetryLater sets its own delay', async () => {
  class Transient extends Error {}
  const app = newApp(server());
  let attempts = 0;
  let seenWhileRetrying: TaskRecord | null = null;
  const picky = app.task({
    name: 'picky',
    schema: z.object({ kind: z.enum(['transient', 'fatal', 'later']) }),
    maxAttempts: 3,
    backoff: { type: 'fixed', delay: 10 },
    retryOn: [Transient],
    handler: async ({ kind }, ctx) => {
      attempts++;
      if (kind === 'fatal') throw new TypeError('bad data');
      if (kind === 'later' && ctx.attempt === 1) {
        const err = new RetryLater('rate limited', { delay: 300 });
        void err.stack; // formatted now, not between the record's two timestamps (see above)
        throw err;
      }
      // Attempt 2 of 'later' starts while attempt 1's 'retrying' record is still the stored one.
      if (kind === 'later') seenWhileRetrying = await storedRecord(app, ctx.id);
      if (kind === 'transient' && ctx.attempt < 3) throw new Transient('blip');
      return ctx.attempt;
    },
  });
  const worker = new Worker(app, fast);
  await worker.start();
  const fatal = await picky.enqueue({ kind: 'fatal' });
  await assert.rejects(fatal.result({ timeout: '30s' }), /bad data/);
  assert.equal((await app.getTask(fatal.id))?.attempt, 1);
  assert.equal(attempts, 1, 'not retried');
  assert.equal((await app.deadLetters.get('default', fatal.id))?.reason, 'not-retryable');
  attempts = 0;
  assert.equal(await (await picky.enqueue({ kind: 'transient' })).result({ timeout: '30s' }), 3);
  assert.equal(attempts, 3);
  const at = Date.now();
  const later = await picky.enqueue({ kind: 'later' });
  assert.equal(await later.result({ timeout: '30s' }), 2);
  assert.ok(Date.now() - at >= 300, `retried after ${Date.now() - at} ms`);
  const retrying = seenWhileRetrying as TaskRecord | null;
  assert.equal(retrying?.state, 'retrying');
  assert.equal(retrying?.attempt, 1);
  assert.equal(retrying?.error?.message, 'rate limited');
  assert.equal(retrying?.error?.name, 'RetryLater');
  // The handler's delay, not the task's fixed 10 ms backoff (slack above: see the first test).
  const delay = (retrying?.retryAt ?? 0) - (retrying?.finishedAt ?? 0);
  assert.ok(delay >= 299 && delay <= 350, `RetryLater scheduled the retry after ${delay} ms`);
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
  // Unknown tasks are dead-lettered at once here (the default leaves them for another worker).
  const worker = new Worker(app, { ...fast, unknownTasks: 'dead-letter' });
  await worker.start();
  const handles = await good.enqueueMany([1, 2, 3].map((n) => ({ args: { n } })));
  assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '30s' }))), [2, 3, 4]);
  await until(async () => (await app.deadLetters.count('default')) === 4, 30_000, 'four dead letters');
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

test('hard time limit: the stuck attempt fails and the worker keeps serving', async () => {
  const app = newApp(server());
  let stuckReason: unknown;
  const stuck = app.task({
    name: 'stuck',
    schema: z.object({}),
    timeLimit: 200,
    handler: (_a, ctx) =>
      new Promise<never>(() => {
        ctx.signal.addEventListener('abort', () => {
          stuckReason = ctx.signal.reason as unknown;
        });
      }),
  });
  const quick = app.task({ name: 'quick', schema: z.object({}), handler: () => 'quick' });
  const worker = new Worker(app, { ...fast, concurrency: 1 });
  await worker.start();
  const s = await stuck.enqueue({});
  const q = await quick.enqueue({});
  await assert.rejects(s.result({ timeout: '30s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.match(err.remote.message, /time limit of 200 ms/);
    return true;
  });
  // With one slot, 'quick' runs only because the stuck attempt gave its slot up.
  assert.equal(await q.result({ timeout: '30s' }), 'quick');
  assert.equal((await app.getTask(s.id))?.error?.code, 'E_TIME_LIMIT');
  assert.ok(stuckReason instanceof TimeLimitError, 'the stuck handler was told through its signal');
  assert.equal(stuckReason.kind, 'hard');
  await worker.stop();
});

test('soft time limit: ctx.signal is aborted at the soft limit with a TimeLimitError of kind soft', async () => {
  const app = newApp(server());
  const polite = app.task({
    name: 'polite',
    schema: z.object({}),
    softTimeLimit: 100,
    // Far beyond anything this test waits for: only the soft limit can end the handler.
    timeLimit: '10m',
    handler: (_a, ctx) => {
      const started = Date.now();
      return new Promise((resolve) =>
        ctx.signal.addEventListener('abort', () => {
          const reason: unknown = ctx.signal.reason;
          resolve({
            elapsed: Date.now() - started,
            isTimeLimit: reason instanceof TimeLimitError,
            kind: (reason as TimeLimitError).kind,
            limitMs: (reason as TimeLimitError).limitMs,
            code: (reason as TimeLimitError).code,
          });
        }),
      );
    },
  });
  const worker = new Worker(app, fast);
  await worker.start();
  const h = await polite.enqueue({});
  const r = (await h.result({ timeout: '60s' })) as {
    elapsed: number;
    isTimeLimit: boolean;
    kind: string;
    limitMs: number;
    code: string;
  };
  assert.deepEqual(
    { isTimeLimit: r.isTimeLimit, kind: r.kind, limitMs: r.limitMs, code: r.code },
    { isTimeLimit: true, kind: 'soft', limitMs: 100, code: 'E_TIME_LIMIT' },
  );
  // Not before the soft limit (timers may fire up to a ms early as Date.now() sees them). The upper
  // bound is loose on purpose: under load a timer fires late, and the hard limit is 10 minutes away.
  assert.ok(r.elapsed >= 99, `aborted after ${r.elapsed} ms`);
  assert.ok(r.elapsed < 30_000, `aborted after ${r.elapsed} ms`);
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'succeeded', 'a handler that stops cleanly at the soft limit succeeds');
  await worker.stop();
});

test('an expired task is not run and is recorded as expired (expires and expiresAt)', async () => {
  const app = newApp(server());
  const ran: string[] = [];
  const t = app.task({
    name: 'exp',
    schema: z.object({ label: z.string() }),
    handler: ({ label }) => {
      ran.push(label);
      return label;
    },
  });
  await app.redis(); // connected first, so the short expiries below are not spent connecting
  const relative = await t.enqueue({ label: 'relative' }, { expires: 50 });
  const expiresAt = new Date(Date.now() + 200);
  const absolute = await t.enqueue({ label: 'absolute' }, { expiresAt });
  const alive = await t.enqueue({ label: 'alive' }, { expiresAt: Date.now() + 3_600_000 });
  // The expiry travels with the message (meta "x": ms since epoch).
  const entry = await server()
    .client()
    .xrange(app.keys.stream.key({ queue: 'default' }), '-', '+');
  assert.equal(
    (JSON.parse(entry[1]?.[1][1] as string) as [string, unknown, { x: number }])[2].x,
    expiresAt.getTime(),
  );
  // Start the worker only once both expiries have passed (a wait on the clock, not on the worker).
  await until(() => Date.now() > expiresAt.getTime() + 5, 5000, 'the expiry to pass');
  const worker = new Worker(app, fast);
  await worker.start();
  assert.equal(await alive.result({ timeout: '30s' }), 'alive');
  await until(
    async () => (await relative.info())?.state === 'expired' && (await absolute.info())?.state === 'expired',
    30_000,
    'both expired',
  );
  await worker.stop();
  assert.deepEqual(ran, ['alive']);
  const info = await absolute.info();
  assert.equal(info?.error?.code, 'E_EXPIRED');
  assert.match(info?.error?.message ?? '', new RegExp(`expiry at ${expiresAt.toISOString()}; not run`));
  assert.equal((await relative.info())?.error?.code, 'E_EXPIRED');
  await assert.rejects(relative.result({ timeout: 100 }), /not started before its expiry/);
  await assert.rejects(absolute.result({ timeout: 100 }), /not started before its expiry/);
  assert.equal(await app.deadLetters.count('default'), 0, 'an expired task is not a dead letter');
});

test('a long task on a live worker is never handed to another worker', async () => {
  const app = newApp(server());
  let runs = 0;
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const long = app.task({
    name: 'long',
    schema: z.object({}),
    handler: async () => {
      runs++;
      started();
      await gate;
      return 'done';
    },
  });
  // claimIdle 1 s: heartbeats every ~333 ms, so only an event-loop stall of over 600 ms could let
  // the other worker take the task (a 300 ms claimIdle flaked on a loaded machine).
  const claimIdle = 1000;
  const opts = { ...fast, claimIdle, reclaimInterval: 50 };
  const a = new Worker(app, opts);
  const b = new Worker(app, opts);
  await a.start();
  const h = await long.enqueue({});
  await running;
  await b.start();
  // Keep it running for three times claimIdle while b looks for idle tasks every 50 ms.
  const since = Date.now();
  await until(() => Date.now() - since > 3 * claimIdle, 10_000, 'three claimIdle periods');
  const active = await h.info();
  assert.equal(active?.state, 'active');
  assert.equal(active?.worker, a.name, 'still held by the worker running it');
  assert.equal(active?.deliveries, 1, 'never reclaimed (a reclaim counts as a delivery)');
  release();
  assert.equal(await h.result({ timeout: '30s' }), 'done');
  assert.equal(runs, 1, 'ran once despite running 3x longer than claimIdle');
  assert.equal((await app.getTask(h.id))?.worker, a.name);
  await Promise.all([a.stop(), b.stop()]);
});

test("a dead holder's task is handed on to a live worker after claimIdle", async () => {
  const app = newApp(server());
  const stream = await ensureGroup(app);
  const seen: { worker?: string | undefined; deliveries?: number | undefined }[] = [];
  const t = app.task({
    name: 'handed',
    schema: z.object({}),
    handler: async (_a, ctx) => {
      const info = await app.getTask(ctx.id);
      seen.push({ worker: info?.worker, deliveries: info?.deliveries });
      return 'done';
    },
  });
  const h = await t.enqueue({});
  // A consumer that reads the task and dies: it holds the entry before any worker runs.
  const ghost = server().client();
  const read = (await ghost.xreadgroup('GROUP', 'tasuki', 'ghost', 'COUNT', 1, 'STREAMS', stream, '>')) as [
    string,
    [string, string[]][],
  ][];
  assert.equal(read[0]?.[1][0]?.[0], parseTaskId(h.id).local, 'the ghost holds the task');
  assert.equal((await h.info())?.worker, 'ghost');
  const c = new Worker(app, { ...fast, claimIdle: 300, reclaimInterval: 50 });
  await c.start();
  assert.equal(await h.result({ timeout: '30s' }), 'done', 'taken over from the dead holder and run');
  assert.deepEqual(seen, [{ worker: c.name, deliveries: 2 }], 'run once, by c, on the second delivery');
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'succeeded');
  assert.equal(info?.worker, c.name);
  assert.equal(((await ghost.xpending(stream, 'tasuki')) as [number])[0], 0, 'nothing left pending');
  await c.stop();
});

test('a task that keeps losing its workers is dead-lettered after maxDeliveries', async () => {
  const app = newApp(server());
  let runs = 0;
  const t = app.task({ name: 'cursed', schema: z.object({}), handler: () => ++runs });
  const stream = await ensureGroup(app);
  const h = await t.enqueue({});
  const entry = parseTaskId(h.id).local;
  const ghost = server().client();
  await ghost.xreadgroup('GROUP', 'tasuki', 'ghost', 'COUNT', 1, 'STREAMS', stream, '>');
  // Five more deliveries to dead consumers: six in all before any worker starts.
  for (let i = 0; i < 5; i++) await ghost.xclaim(stream, 'tasuki', 'ghost', 0, entry);
  assert.equal((await h.info())?.deliveries, 6);
  const c = new Worker(app, { ...fast, claimIdle: 300, reclaimInterval: 50, maxDeliveries: 5 });
  await c.start();
  await assert.rejects(h.result({ timeout: '30s' }), /delivered 7 times without finishing/);
  assert.equal(runs, 0, 'not run');
  const dead = await app.deadLetters.get('default', h.id);
  assert.equal(dead?.reason, 'max-deliveries');
  assert.equal((await app.getTask(h.id))?.state, 'failed');
  await c.stop();
});
