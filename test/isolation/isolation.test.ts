import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { z } from 'zod';
import { GROUP, Worker, type Tasuki, type WorkerOptions } from '../../src/index.js';
import { alive } from '../support/cli.js';
import { newApp, until, useRedis } from '../support/redis.js';
import { defineIsolated, QUEUES } from './fixtures/isolated-app.js';

const server = useRedis();
const KINDS = ['thread', 'process'] as const;

/** A started worker on `app`, stopped after the test. */
async function worker(
  app: Tasuki,
  t: { after: (fn: () => Promise<void>) => void },
  options: WorkerOptions = {},
): Promise<Worker> {
  const w = new Worker(app, { concurrency: 4, ...options });
  await w.start();
  t.after(() => w.stop());
  return w;
}

/** The first progress report whose value matches, waited for on the task's progress stream. */
async function reported(app: Tasuki, id: string, match: (v: unknown) => boolean): Promise<unknown> {
  for await (const p of app.followProgress(id, { blockMs: 200 })) if (match(p.value)) return p.value;
  throw new Error(`task ${id} ended without the expected progress`);
}

for (const kind of KINDS) {
  test(`${kind}: a CPU-bound handler keeps the worker's other tasks running and its claim renewed`, async (t) => {
    const app = newApp(server(), { queues: QUEUES });
    const tasks = defineIsolated(app, kind);
    await worker(app, t, { claimIdle: '1s' });
    const spinMs = 3000;
    const spin = await tasks.spin.enqueue({ ms: spinMs });
    const where = (await reported(app, spin.id, (v) => (v as { started?: boolean }).started === true)) as {
      pid: number;
      threadId: number;
    };
    if (kind === 'thread') assert.ok(where.pid === process.pid && where.threadId > 0, JSON.stringify(where));
    else assert.notEqual(where.pid, process.pid);

    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    // While it spins: tasks on the worker's own event loop run, one after another.
    const ticks = [];
    for (let n = 0; n < 10; n++)
      ticks.push(await (await tasks.tick.enqueue({ n })).result({ timeout: '5s' }));
    assert.deepEqual(ticks, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Its claim is renewed: the entry was touched within claimIdle (heartbeats every third of it).
    const stream = app.keys.stream.key({ queue: 'iso' });
    const pending = (await server().client().xpending(stream, GROUP, '-', '+', 10)) as [
      string,
      string,
      number,
    ][];
    assert.equal(pending.length, 1);
    assert.ok((pending[0] as [string, string, number])[2] < 1000, `idle ${pending[0]?.[2]} ms`);
    assert.equal((await spin.info())?.state, 'active', 'the ticks finished while the handler still ran');

    assert.deepEqual(await spin.result({ timeout: '30s' }), { pid: where.pid, threadId: where.threadId });
    lag.disable();
    // The worker's event loop was never stuck for the spin (3 s); the bound is loose for loaded CI.
    assert.ok(lag.max / 1e6 < 1000, `event loop delay up to ${Math.round(lag.max / 1e6)} ms`);
    const info = await spin.info();
    assert.equal(info?.attempt, 1);
    assert.deepEqual((await spin.progress())?.value, 100);
  });

  test(`${kind}: the hard time limit ends a runaway isolate; the attempt fails with E_TIME_LIMIT`, async (t) => {
    const app = newApp(server(), { queues: QUEUES });
    const tasks = defineIsolated(app, kind);
    await worker(app, t);
    const started = Date.now();
    const h = await tasks.runaway.enqueue({});
    await assert.rejects(h.result({ timeout: '30s' }), (err: { remote?: { code?: string } }) => {
      assert.equal(err.remote?.code, 'E_TIME_LIMIT');
      return true;
    });
    const where = (await h.progress())?.value as { pid: number; threadId: number };
    if (kind === 'process') await until(() => !alive(where.pid), 5000, 'the runaway process to end');
    // The next task gets a new isolate (the pool has one), and runs at once.
    const next = await (await tasks.echo.enqueue({ text: 'after' })).result({ timeout: '30s' });
    assert.equal(next.text, 'after');
    if (kind === 'thread') assert.notEqual(next.threadId, where.threadId);
    assert.ok(Date.now() - started < 25_000);
  });

  test(`${kind}: a crashing isolate fails the attempt (retried by the task's policy), not the worker`, async (t) => {
    const app = newApp(server(), { queues: QUEUES });
    const tasks = defineIsolated(app, kind);
    const w = await worker(app, t);
    for (const how of ['exit', 'uncaught'] as const) {
      const h = await tasks.crash.enqueue({ how });
      assert.equal((await h.result({ timeout: '30s' })).survived, 2, how);
    }
    assert.equal(w.counts.retried, 2);
    assert.equal(await (await tasks.tick.enqueue({ n: 1 })).result({ timeout: '5s' }), 1);
  });

  test(`${kind}: ctx in the isolate: id, queue, attempt, log, progress, and the signal aborted by the soft limit`, async (t) => {
    const app = newApp(server(), { queues: QUEUES });
    const tasks = defineIsolated(app, kind);
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      }),
    );
    const w = await worker(app, t, { logger });
    const h = await tasks.echo.enqueue({ text: 'hello' });
    const r = await h.result({ timeout: '30s' });
    assert.deepEqual([r.text, r.id, r.queue, r.attempt, r.fence], ['hello', h.id, 'iso', 1, true]);
    if (kind === 'process') assert.notEqual(r.pid, process.pid);
    assert.deepEqual((await h.progress())?.value, { step: 3 });
    const line = lines.find((l) => l.msg === 'echo from the isolate');
    assert.ok(line, 'the log line reached the worker');
    assert.deepEqual(
      [line.text, line.taskId, line.task, line.worker],
      ['hello', h.id, `echo.${kind}`, w.name],
    );

    const soft = await (await tasks.soft.enqueue({})).result({ timeout: '30s' });
    assert.match(soft, /soft time limit of 300 ms/);

    // Stopping the worker ends its isolates: no process outlives it.
    await w.stop();
    if (kind === 'process') await until(() => !alive(r.pid), 5000, 'the isolate process to end');
  });
}

test('thread: an isolate out of memory (maxMemoryMb) fails the attempt with E_ISOLATE', async (t) => {
  const app = newApp(server(), { queues: QUEUES });
  const tasks = defineIsolated(app, 'thread');
  await worker(app, t);
  const h = await tasks.oom.enqueue({});
  await assert.rejects(
    h.result({ timeout: '60s' }),
    (err: { remote?: { code?: string; message?: string } }) => {
      assert.equal(err.remote?.code, 'E_ISOLATE');
      assert.match(err.remote?.message ?? '', /ERR_WORKER_OUT_OF_MEMORY/);
      return true;
    },
  );
  assert.equal(
    (await (await tasks.echo.enqueue({ text: 'still here' })).result({ timeout: '30s' })).text,
    'still here',
  );
});

test('isolation option: a bad kind is refused when the task is defined; a module without the task fails its attempts clearly', async (t) => {
  const app = newApp(server(), { queues: QUEUES });
  assert.throws(
    () =>
      app.task({
        name: 'bad-kind',
        queue: 'iso',
        isolation: 'fork' as 'thread',
        schema: z.object({}),
        handler: () => 0,
      }),
    (err: { code?: string; message: string }) => err.code === 'E_CONFIG' && /isolation/.test(err.message),
  );
  const ghost = app.task({
    name: 'ghost',
    queue: 'iso',
    // A module that defines other tasks, not this one.
    isolation: { kind: 'thread', module: new URL('./fixtures/isolated-app.ts', import.meta.url) },
    schema: z.object({}),
    handler: () => 0,
  });
  await worker(app, t);
  await assert.rejects(
    (await ghost.enqueue({})).result({ timeout: '30s' }),
    (err: { remote?: { code?: string; message?: string } }) => {
      assert.equal(err.remote?.code, 'E_CONFIG');
      assert.match(
        err.remote?.message ?? '',
        /isolated-app\.ts defines no task "ghost" when imported \(tasks it defines: spin\.thread, /,
      );
      return true;
    },
  );
});

test('process: a stop whose grace runs out ends the busy isolate and hands its task back', async () => {
  const app = newApp(server(), { queues: QUEUES });
  const tasks = defineIsolated(app, 'process');
  const w = new Worker(app, { concurrency: 1, grace: '500ms' });
  await w.start();
  const h = await tasks.spin.enqueue({ ms: 60_000 });
  const where = (await reported(app, h.id, (v) => (v as { started?: boolean }).started === true)) as {
    pid: number;
  };
  const stopping = Date.now();
  await w.stop();
  assert.ok(Date.now() - stopping < 10_000, `stop took ${Date.now() - stopping} ms`);
  await until(() => !alive(where.pid), 5000, 'the busy isolate to end');
  assert.equal((await h.info())?.state, 'queued', 'handed back for another worker');
});

test('thread: a pool of size 1 runs one attempt at a time in the same isolate; the others wait for it', async (t) => {
  const app = newApp(server(), { queues: QUEUES });
  const tasks = defineIsolated(app, 'thread');
  await worker(app, t); // concurrency 4; echo's pool has size 1
  const handles = await tasks.echo.enqueueMany(['a', 'b', 'c', 'd'].map((text) => ({ args: { text } })));
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '30s' })));
  assert.deepEqual(
    results.map((r) => r.text),
    ['a', 'b', 'c', 'd'],
  );
  assert.equal(new Set(results.map((r) => r.threadId)).size, 1, 'one thread ran them all');
});
