/**
 * The broker conformance suite: one set of behaviour tests that every broker must pass, run by
 * redis-streams.test.ts and rabbitmq.test.ts. Each test counts tasks in and out; only how a raw
 * message is injected differs per broker.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  Beat,
  CanvasFailedError,
  TaskFailedError,
  Worker,
  chain,
  chord,
  group,
  type TaskHandle,
  type Tasuki,
  type WorkerOptions,
} from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Duration } from '../../src/util/duration.js';
import { bookkeeping, count } from '../fixtures/counting-app.js';
import type { BrokerUnderTest } from '../support/brokers.js';
import { runCli } from '../support/cli.js';
import { randomPrefix, until } from '../support/redis.js';
import { startWorker } from '../support/workers.js';
import { controlConformance } from './control.js';

const quiet = { logger: silentLogger(), promoteIntervalMs: 20 };

/** Puts a message on a queue as a foreign producer would, bypassing tasuki's checks. */
export type InjectRaw = (app: Tasuki, queue: string, body: string) => Promise<void>;

/** A worker on `app`, stopped after the test. */
async function worker(
  app: Tasuki,
  t: { after(fn: () => Promise<void>): void },
  options: WorkerOptions = {},
): Promise<Worker> {
  const w = new Worker(app, { ...quiet, concurrency: 8, ...options });
  await w.start();
  t.after(() => w.stop());
  return w;
}

export function conformance(broker: BrokerUnderTest, injectRaw: InjectRaw): void {
  const name = broker.kind;
  // Revoke, cancel, purge and getTask of waiting tasks (./control.ts).
  controlConformance(broker);

  test(`${name}: enqueue → result, one, a bulk of 300 and with an idempotency key`, async (t) => {
    const app = broker.app();
    const double = app.task({
      name: 'double',
      schema: z.object({ n: z.number() }),
      handler: ({ n }) => n * 2,
    });
    await worker(app, t);
    assert.equal(await (await double.enqueue({ n: 21 })).result({ timeout: '20s' }), 42);
    const handles = await double.enqueueMany(Array.from({ length: 300 }, (_, n) => ({ args: { n } })));
    assert.equal(new Set(handles.map((h) => h.id)).size, 300, 'every task has its own id');
    const results = await Promise.all(handles.map((h) => h.result({ timeout: '30s' })));
    assert.deepEqual(
      results,
      Array.from({ length: 300 }, (_, n) => n * 2),
    );
    const first = await double.enqueue({ n: 1 }, { idempotencyKey: 'order-7' });
    const again = await double.enqueue({ n: 1 }, { idempotencyKey: 'order-7' });
    assert.equal(first.created, true);
    assert.equal(again.created, false);
    assert.equal(again.id, first.id, 'the repeat names the first task');
    assert.equal(await again.result({ timeout: '20s' }), 2);
    const info = await app.getTask(first.id);
    assert.equal(info?.state, 'succeeded');
  });

  test(`${name}: pause: a paused queue's tasks wait while the worker serves its other queue; resume runs them`, async (t) => {
    const app = broker.app({ queues: ['default', 'other'] });
    const ran: string[] = [];
    const job = app.task({
      name: 'job',
      schema: z.object({ n: z.number() }),
      handler: ({ n }) => void ran.push(`job ${n}`),
    });
    const other = app.task({
      name: 'other',
      queue: 'other',
      schema: z.object({ n: z.number() }),
      handler: ({ n }) => void ran.push(`other ${n}`),
    });
    const w = await worker(app, t);
    assert.equal(await app.pause('default', { by: 'conformance' }), true);
    await until(() => w.paused.includes('default'), 10_000, 'the worker to hear of the pause');
    const waiting = await job.enqueueMany([{ args: { n: 1 } }, { args: { n: 2 } }, { args: { n: 3 } }]);
    // Tasks on the other queue, enqueued after the paused ones, run: the worker fetches meanwhile.
    for (const n of [1, 2, 3]) await (await other.enqueue({ n })).result({ timeout: '20s' });
    assert.deepEqual(ran, ['other 1', 'other 2', 'other 3'], 'nothing of the paused queue ran');
    assert.equal(await app.resume('default'), true);
    await Promise.all(waiting.map((h) => h.result({ timeout: '20s' })));
    assert.deepEqual(ran.filter((r) => r.startsWith('job')).sort(), ['job 1', 'job 2', 'job 3']);
  });

  test(`${name}: priorities: a backlog of level 0, then levels 3 and 1: one worker runs 3, then 1, then 0; a retry and a delay keep their level`, async (t) => {
    const app = broker.app();
    const ran: string[] = [];
    const levels: string[] = [];
    const failed = new Set<string>();
    const job = app.task({
      name: 'job',
      schema: z.object({ name: z.string() }),
      maxAttempts: 2,
      backoff: { type: 'fixed', delay: 50, jitter: false },
      handler: ({ name }, ctx) => {
        levels.push(`${name}@${ctx.priority}`);
        if (name.startsWith('retry') && !failed.has(name)) {
          failed.add(name);
          throw new Error(`${name} fails once`);
        }
        ran.push(name);
      },
    });
    await job.enqueueMany(['l1', 'l2', 'l3', 'l4'].map((n) => ({ args: { name: n } })));
    await job.enqueue({ name: 'm1' }, { priority: 1 });
    await job.enqueueMany([
      { args: { name: 'h1' }, options: { priority: 3 } },
      { args: { name: 'h2' }, options: { priority: 3 } },
    ]);
    await worker(app, t, { concurrency: 1 });
    await until(() => ran.length === 7, 20_000, 'the 7 tasks to run');
    assert.deepEqual(ran, ['h1', 'h2', 'm1', 'l1', 'l2', 'l3', 'l4'], 'higher levels first');
    assert.ok(levels.includes('h1@3') && levels.includes('m1@1') && levels.includes('l1@0'));
    // A level 2 task that fails once and a delayed level 3 one are delivered from their levels.
    levels.length = 0;
    const retried = await job.enqueue({ name: 'retry2' }, { priority: 2 });
    const delayed = await job.enqueue({ name: 'delayed3' }, { delay: 300, priority: 3 });
    await retried.result({ timeout: '20s' });
    await delayed.result({ timeout: '20s' });
    assert.deepEqual(levels.sort(), ['delayed3@3', 'retry2@2', 'retry2@2'], 'each attempt on its level');
    assert.equal((await app.getTask(retried.id))?.attempt, 2);
  });

  test(`${name}: canvas: a chain, a group, a chord and nested canvases run, every member once`, async (t) => {
    const app = broker.app({ queues: ['default', 'other'] });
    const runs = new Map<string, number>();
    const ran = (key: string): void => void runs.set(key, (runs.get(key) ?? 0) + 1);
    const add = app.task({
      name: 'add',
      schema: z.object({ a: z.number(), b: z.number() }),
      handler: ({ a, b }) => {
        ran(`add ${a}+${b}`);
        return a + b;
      },
    });
    const double = app.task({
      name: 'double',
      queue: 'other',
      schema: z.number(),
      handler: (n) => {
        ran(`double ${n}`);
        return n * 2;
      },
    });
    const sum = app.task({
      name: 'sum',
      schema: z.array(z.number()),
      handler: (ns) => {
        ran(`sum ${ns.join(',')}`);
        return ns.reduce((a, b) => a + b, 0);
      },
    });
    await worker(app, t);
    // A chain across two queues, each member taking the previous one's result.
    const c = await chain(add.s({ a: 1, b: 2 }), double.s(), double.s()).enqueue();
    assert.equal(await c.result({ timeout: '30s' }), 12);
    assert.equal((await app.getTask(c.id))?.state, 'succeeded');
    // A group: results in the order given.
    const g = await group([add.s({ a: 10, b: 1 }), double.s(4), add.s({ a: 20, b: 2 })]).enqueue();
    assert.deepEqual(await g.result({ timeout: '30s' }), [11, 8, 22]);
    // A chord of 20: the callback once, with every result in order.
    const members = Array.from({ length: 20 }, (_, i) => add.s({ a: 100, b: i }));
    const ch = await chord(members, sum.s()).enqueue();
    assert.equal(await ch.result({ timeout: '30s' }), 20 * 100 + 190);
    // Nested: a chord inside a chain, then a group of chains.
    const nested = await chain(
      chord([add.s({ a: 1, b: 1 }), add.s({ a: 3, b: 3 })], sum.s()),
      double.s(),
    ).enqueue();
    assert.equal(await nested.result({ timeout: '30s' }), 16);
    const chains = await group([
      chain(add.s({ a: 5, b: 0 }), double.s()),
      chain(add.s({ a: 7, b: 0 }), double.s()),
    ]).enqueue();
    assert.deepEqual(await chains.result({ timeout: '30s' }), [10, 14]);
    const twice = [...runs].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'no member ran twice');
    const sums = [...runs.keys()].filter((k) => k.startsWith('sum'));
    assert.equal(sums.length, 2, 'each chord callback ran once');
  });

  test(`${name}: canvas: a member waiting in its queue is found by getTask and can be revoked; the canvas fails naming it`, async (t) => {
    const app = broker.app({ queues: ['default', 'other'] });
    const first = app.task({ name: 'first', schema: z.number(), handler: (n) => n + 1 });
    const second = app.task({ name: 'second', queue: 'other', schema: z.number(), handler: (n) => n * 10 });
    // Nobody takes tasks from "other": the chain's second member waits there once the first ran.
    await app.pause('other');
    await worker(app, t);
    const c = await chain(first.s(1), second.s()).enqueue();
    assert.equal(await c.members[0]!.result({ timeout: '30s' }), 2);
    const waiting = c.members[1]!.id;
    await until(
      async () => (await app.getTask(waiting))?.state === 'queued',
      20_000,
      'the second member to wait',
    );
    assert.deepEqual(await app.revoke(waiting), { id: waiting, outcome: 'revoked', was: 'queued' });
    assert.equal((await app.getTask(waiting))?.state, 'revoked');
    // The canvas fails naming it: at once on Redis Streams (the revoke continues it), on RabbitMQ
    // once a worker meets the revoked message (the queue resumed).
    await app.resume('other');
    await assert.rejects(c.result({ timeout: '30s' }), (err: unknown) => {
      assert.ok(err instanceof CanvasFailedError);
      assert.equal(err.member.id, waiting);
      assert.equal(err.member.state, 'revoked');
      return true;
    });
  });

  test(`${name}: canvas: a failing member fails its canvas once; nothing after it starts`, async (t) => {
    const app = broker.app();
    const ran: string[] = [];
    const ok = app.task({
      name: 'ok',
      schema: z.object({ n: z.number() }),
      handler: ({ n }) => {
        ran.push(`ok ${n}`);
        return n;
      },
    });
    const boom = app.task({
      name: 'boom',
      schema: z.object({}),
      maxAttempts: 2,
      backoff: { type: 'fixed', delay: 50 },
      handler: () => {
        ran.push('boom');
        throw new Error('the member broke');
      },
    });
    const after = app.task({
      name: 'after',
      schema: z.unknown(),
      handler: () => void ran.push('after'),
    });
    await worker(app, t);
    const h = await chord([ok.s({ n: 1 }), boom.s({}), ok.s({ n: 2 })], after.s()).enqueue();
    await assert.rejects(h.result({ timeout: '30s' }), (err: unknown) => {
      assert.ok(err instanceof CanvasFailedError);
      assert.equal(err.member.task, 'boom');
      assert.match(err.message, /the member broke/);
      return true;
    });
    // The other members run to their end; the callback is never started.
    await Promise.all([h.members[0]!.result({ timeout: '30s' }), h.members[2]!.result({ timeout: '30s' })]);
    const info = await app.getTask(h.id);
    assert.equal(info?.state, 'failed');
    assert.equal((await app.deadLetters.list('default')).length, 1, 'the failed member is one dead letter');
    const c = await chain(boom.s({}), after.s()).enqueue();
    await assert.rejects(c.result({ timeout: '30s' }), CanvasFailedError);
    assert.deepEqual(
      ran.filter((r) => r !== 'boom').sort(),
      ['ok 1', 'ok 2'],
      'nothing after a failed member ran',
    );
    assert.equal(ran.filter((r) => r === 'boom').length, 4, 'each failing member ran its two attempts');
  });

  test(`${name}: beat: each tick is enqueued once and runs once, under the id beat logged`, async (t) => {
    const app = broker.app();
    const ran: string[] = [];
    const tock = app.task({
      name: 'tock',
      schema: z.object({ n: z.number() }),
      handler: (_args, ctx) => void ran.push(ctx.id),
    });
    app.schedule({ name: 'every-second', task: tock, args: { n: 1 }, every: '1s' });
    const logged: string[] = [];
    const clock = { t: Date.now() };
    const beat = new Beat(
      app,
      { lease: '5s', id: 'conformance' },
      { now: () => Promise.resolve(clock.t), onTick: (e) => void logged.push(e.taskId) },
    );
    t.after(() => beat.stop());
    await beat.reconcile();
    // Three ticks, each round run twice: the second, at the same time, enqueues nothing more.
    for (let i = 1; i <= 3; i++) {
      clock.t += 1000;
      await beat.runOnce();
      await beat.runOnce();
    }
    assert.equal(logged.length, 3, 'three ticks enqueued');
    await worker(app, t);
    await Promise.all(logged.map((id) => app.waitForResult(id, { timeout: '20s' })));
    assert.deepEqual([...ran].sort(), [...logged].sort(), 'each tick ran once, under its logged id');
  });

  test(`${name}: a delayed task runs after its delay, not before`, async (t) => {
    const app = broker.app();
    const ranAt: number[] = [];
    const stamp = app.task({
      name: 'stamp',
      schema: z.object({}),
      handler: () => {
        ranAt.push(Date.now());
        return 'ok';
      },
    });
    await worker(app, t);
    const at = Date.now();
    const handles = await Promise.all([600, 1200].map((ms) => stamp.enqueue({}, { delay: ms })));
    assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '20s' }))), ['ok', 'ok']);
    assert.equal(ranAt.length, 2);
    const sorted = ranAt.map((r) => r - at).sort((a, b) => a - b);
    assert.ok(sorted[0]! >= 600, `the 600 ms task ran after ${sorted[0]} ms`);
    assert.ok(sorted[1]! >= 1200, `the 1200 ms task ran after ${sorted[1]} ms`);
    assert.ok(sorted[1]! < 6000, `the 1200 ms task ran only after ${sorted[1]} ms`);
  });

  test(`${name}: a failing task is retried with backoff and succeeds on attempt 3`, async (t) => {
    const app = broker.app();
    const starts: number[] = [];
    const flaky = app.task({
      name: 'flaky',
      schema: z.object({}),
      maxAttempts: 5,
      backoff: { type: 'fixed', delay: 300 },
      handler: (_args, ctx) => {
        starts.push(Date.now());
        if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
        return ctx.attempt;
      },
    });
    await worker(app, t);
    const h = await flaky.enqueue({});
    assert.equal(await h.result({ timeout: '20s' }), 3);
    assert.equal(starts.length, 3, 'three attempts, no more');
    for (let i = 1; i < starts.length; i++) {
      const gap = starts[i]! - starts[i - 1]!;
      assert.ok(gap >= 300, `retry ${i} came after ${gap} ms, before its 300 ms backoff`);
    }
    const info = await app.getTask(h.id);
    assert.equal(info?.attempt, 3);
  });

  test(`${name}: the last attempt fails: one dead letter, tasuki dlq lists it and retry runs it again`, async (t) => {
    const prefix = randomPrefix();
    const app = broker.app({ prefix });
    let healthy = false;
    const runs: number[] = [];
    // The name of the counting app's task, so the CLI (which loads that app) knows it.
    const task = app.task({
      name: count.name,
      schema: count.definition.schema,
      maxAttempts: 2,
      backoff: { type: 'fixed', delay: 50 },
      handler: ({ i }) => {
        runs.push(i);
        if (!healthy) throw new Error('the mail server is down');
        return i;
      },
    });
    await worker(app, t);
    const h = await task.enqueue({ i: 7 });
    await assert.rejects(h.result({ timeout: '20s' }), (err: unknown) => {
      assert.ok(err instanceof TaskFailedError);
      assert.match(err.message, /the mail server is down/);
      return true;
    });
    assert.deepEqual(runs, [7, 7], 'exactly maxAttempts runs');
    const dead = await app.deadLetters.list('default');
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.taskId, h.id);
    assert.equal(dead[0]!.reason, 'max-attempts');

    const env = { REDIS_URL: broker.redis().url, TEST_PREFIX: prefix, ...broker.env() };
    const args = ['--app', 'test/fixtures/counting-app.ts'];
    const list = await runCli(['dlq', 'list', ...args, '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(h.id.replace(/[.@-]/g, '\\$&')));
    healthy = true;
    const retry = await runCli(['dlq', 'retry', ...args, '--queue', 'default', '--all'], env);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(await h.result({ timeout: '20s' }), 7);
    assert.deepEqual(runs, [7, 7, 7]);
    assert.equal((await app.deadLetters.list('default')).length, 0);
  });

  test(`${name}: bad messages are dead-lettered with a reason and the worker goes on`, async (t) => {
    const app = broker.app();
    const echo = app.task({ name: 'echo', schema: z.object({ s: z.string() }), handler: ({ s }) => s });
    // An unknown task is left for another worker for a second, then dead-lettered.
    await worker(app, t, { releaseFor: '1s' });
    await injectRaw(app, 'default', 'this is not JSON');
    await injectRaw(app, 'default', '["echo",{"s":1}]');
    await injectRaw(app, 'default', '["no.such.task",{}]');
    assert.equal(await (await echo.enqueue({ s: 'still here' })).result({ timeout: '20s' }), 'still here');
    await until(
      async () => (await app.deadLetters.list('default')).length === 3,
      20_000,
      'three dead letters',
    );
    const reasons = (await app.deadLetters.list('default')).map((d) => d.reason).sort();
    assert.deepEqual(reasons, ['invalid-args', 'undecodable', 'unknown-task']);
  });

  test(`${name}: a SIGKILLed worker process loses nothing (counted)`, async () => {
    const c = counting(broker);
    const args = ['--concurrency', '10', '--prefetch', '10', '--claim-idle', '1500ms'];
    const env = { TASK_DELAY_MS: '10', ...broker.env() };
    const workers = await Promise.all([0, 1].map(() => startWorker(broker.redis(), c.prefix, args, env)));
    const handles = await c.enqueue(600);
    await c.ranAtLeast(150);
    const victim = workers[0]!;
    victim.child.kill('SIGKILL');
    await victim.done;
    const counts = await c.everyTaskRan(handles, '90s');
    const victimPid = `:${victim.child.pid}`;
    const byVictim = new Set(
      (await c.redis.lrange(c.runlog.key({}), 0, -1))
        .filter((l) => l.endsWith(victimPid))
        .map((l) => l.split(':')[0]),
    );
    const twice = Object.entries(counts).filter(([, n]) => Number(n) > 1);
    for (const [i, n] of twice) {
      assert.equal(Number(n), 2, `task ${i} ran ${n} times`);
      assert.ok(byVictim.has(i), `task ${i} ran twice but never on the killed worker`);
    }
    assert.ok(twice.length <= 20, `${twice.length} duplicates: more than the killed worker held`);
    const survivor = workers[1]!;
    survivor.child.kill('SIGTERM');
    assert.equal((await survivor.done).code, 0);
  });

  test(`${name}: SIGTERM hands unstarted tasks back; another worker runs them, none twice`, async () => {
    const c = counting(broker);
    const env = { TASK_DELAY_MS: '20', ...broker.env() };
    const args = ['--concurrency', '5', '--prefetch', '30', '--grace', '5s'];
    const first = await startWorker(broker.redis(), c.prefix, args, env);
    const handles = await c.enqueue(400);
    await c.ranAtLeast(30);
    first.child.kill('SIGTERM');
    const run = await first.done;
    assert.equal(run.code, 0, run.stderr);
    const stopped = run.stdout
      .split('\n')
      .filter((l) => l.includes('"worker stopped"'))
      .map((l) => JSON.parse(l) as { handedBack: number; abandoned: number });
    assert.equal(stopped.length, 1);
    assert.ok(stopped[0]!.handedBack > 0, 'unstarted tasks were handed back');
    assert.equal(stopped[0]!.abandoned, 0);
    const other = await startWorker(
      broker.redis(),
      c.prefix,
      ['--concurrency', '20', '--claim-idle', '10m'],
      env,
    );
    const counts = await c.everyTaskRan(handles, '60s');
    assert.deepEqual(
      Object.entries(counts).filter(([, n]) => n !== '1'),
      [],
      'no task ran twice',
    );
    other.child.kill('SIGTERM');
    assert.equal((await other.done).code, 0);
  });

  test(`${name}: the broker is SIGKILLed mid-run and restarted: nothing enqueued is lost (counted)`, async () => {
    const c = counting(broker);
    const env = { TASK_DELAY_MS: '15', ...broker.env() };
    const w = await startWorker(broker.redis(), c.prefix, ['--concurrency', '10', '--claim-idle', '2s'], env);
    const handles = await c.enqueue(400);
    await c.ranAtLeast(100);
    // SIGKILL: what the broker confirmed must be on disk (AOF fsync always; quorum queues' WAL).
    await broker.restart({ kill: true });
    await c.everyTaskRan(handles, '120s');
    w.child.kill('SIGTERM');
    await w.done;
  });
}

/**
 * The counting app's task (test/fixtures/counting-app.ts) on a fresh prefix of the broker under
 * test, for tests that run `tasuki worker` processes and count what they ran.
 */
function counting(broker: BrokerUnderTest) {
  const prefix = randomPrefix();
  const app = broker.app({ prefix });
  const redis = broker.redis().client();
  const { runs, runlog } = bookkeeping(prefix);
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  return {
    prefix,
    redis,
    runlog,
    /** Enqueues tasks 0..n-1 in one bulk call. */
    enqueue: (n: number) => producer.enqueueMany(Array.from({ length: n }, (_, i) => ({ args: { i } }))),
    /** Resolves once `n` distinct tasks have run. */
    ranAtLeast: (n: number) =>
      until(async () => (await redis.hlen(runs.key({}))) >= n, 60_000, `${n} tasks to run`),
    /** Checks that every task resolved its own number and ran; resolves the runs per task. */
    async everyTaskRan(handles: readonly TaskHandle[], timeout: Duration): Promise<Record<string, string>> {
      const results = await Promise.all(handles.map((h) => h.result({ timeout })));
      assert.deepEqual(
        results,
        Array.from({ length: handles.length }, (_, i) => i),
      );
      const counts = await redis.hgetall(runs.key({}));
      assert.equal(Object.keys(counts).length, handles.length, 'every task ran');
      return counts;
    },
  };
}
