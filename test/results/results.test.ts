import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { tasuki, TimeoutError, Worker, TasukiError } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { TestRedis } from '../../src/testing/index.js';
import { newApp, onCluster, until, useRedis } from '../support/redis.js';

const server = useRedis();

test('a task moves delayed → queued → active → succeeded, visible by id from another process', async () => {
  const app = newApp(server());
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const t = app.task({
    name: 'gated',
    schema: z.object({}),
    handler: async () => {
      await gate;
      return { ok: true };
    },
  });
  // Another app object on the same Redis and prefix stands for another process.
  const other = tasuki({ redis: server().url, prefix: app.keys.space.prefix, logger: silentLogger() });
  const h = await t.enqueue({}, { delay: 200 });
  assert.equal((await other.getTask(h.id))?.state, 'delayed');
  const worker = new Worker(app, { logger: silentLogger(), promoteIntervalMs: 20 });
  await worker.start();
  await until(async () => (await other.getTask(h.id))?.state === 'active', 30_000, 'active');
  const active = await other.getTask(h.id);
  assert.equal(active?.worker, worker.name);
  assert.equal(active?.deliveries, 1);
  release();
  assert.deepEqual(await other.waitForResult(h.id, { timeout: '30s' }), { ok: true });
  const done = await other.getTask(h.id);
  assert.equal(done?.state, 'succeeded');
  assert.deepEqual(done?.result, { ok: true });
  assert.equal(done?.task, 'gated');
  assert.equal(done?.attempt, 1);
  assert.ok(
    done?.finishedAt !== undefined && done.startedAt !== undefined && done.finishedAt >= done.startedAt,
  );
  await worker.stop();
  await other.close();
});

test('results are stored with the configured TTL, never forever', async () => {
  const app = newApp(server(), { resultTtl: '90s' });
  const t = app.task({ name: 'ttl', schema: z.object({}), handler: () => 1 });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const h = await t.enqueue({});
  await h.result({ timeout: '30s' });
  await worker.stop();
  const local = h.id.split('@')[0] as string;
  const ttl = await server()
    .client()
    .pttl(app.keys.result.key({ queue: 'default', task: local }));
  assert.ok(ttl > 80_000 && ttl <= 90_000, `ttl ${ttl}`);
});

test('result() times out with TimeoutError, and waiting does not poll Redis', async () => {
  // A server of its own, watched with MONITOR: every command a client sends is seen (commands run
  // inside scripts are marked "lua" and left out), so the waiter's own commands can be counted.
  const own = await TestRedis.start();
  const monitor = await own.client().monitor();
  try {
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(String(args[0]).toLowerCase());
    });
    const app = newApp(own);
    const t = app.task({ name: 'never', schema: z.object({}), handler: () => 1 });
    const h = await t.enqueue({}); // no worker: it never runs
    // Warm up (connections, the listener), and wait until its lookup and the blocking read have
    // reached Redis: the timeout runs from the call, so they may come after it rejects.
    await h.result({ timeout: 50 }).catch(() => undefined);
    await until(
      () => seen.includes('evalsha') || seen.includes('eval'),
      30_000,
      "the warm-up's lookup to reach Redis",
    );
    await until(() => seen.includes('xread'), 30_000, 'the blocking read to start');
    const from = seen.length;
    const started = Date.now();
    await assert.rejects(h.result({ timeout: 1500 }), (err: unknown) => {
      assert.ok(err instanceof TimeoutError);
      assert.match(err.message, new RegExp(`task ${h.id} did not finish within 1500 ms`));
      return true;
    });
    assert.ok(Date.now() - started >= 1500);
    const during = seen.slice(from);
    // The one lookup of the task (a script call) and, at most, one end of a 2 s XREAD BLOCK within
    // the 1.5 s: its sweep of waited tasks (MGET) and the next XREAD. No loop of reads while waiting
    // (a 100 ms poll would show 15).
    assert.ok(during.length <= 3, `${during.length} commands while waiting 1.5 s: ${during.join(', ')}`);
    assert.ok(during.includes('evalsha') || during.includes('eval'), `no lookup: ${during.join(', ')}`);
    await app.close();
  } finally {
    monitor.disconnect();
    await own.close();
  }
});

test(
  'many waiters share one blocking connection',
  {
    skip:
      onCluster &&
      'single server only: counts connections in one CLIENT LIST (a cluster has one list per node)',
  },
  async () => {
    const app = newApp(server());
    const t = app.task({ name: 'w', schema: z.object({ i: z.number() }), handler: ({ i }) => i });
    const handles = await t.enqueueMany(Array.from({ length: 300 }, (_, i) => ({ args: { i } })));
    const redis = server().client();
    const clients = async (): Promise<{ id: string; name: string; cmd: string }[]> =>
      String(await redis.client('LIST'))
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => ({
          id: /\bid=(\d+)/.exec(l)?.[1] as string,
          name: /\bname=(\S*)/.exec(l)?.[1] as string,
          cmd: /\bcmd=(\S*)/.exec(l)?.[1] as string,
        }));
    // The app's own connection is open already (it enqueued); every connection made from here on is
    // one the waiting made.
    const before = new Set((await clients()).map((c) => c.id));
    const opened = async () => (await clients()).filter((c) => !before.has(c.id));
    const waits = handles.map((h) => h.result({ timeout: '30s' }));
    // Wait for the blocking read itself rather than a fixed time.
    await until(
      async () => (await opened()).some((c) => c.cmd === 'xread'),
      30_000,
      'the result connection to block in XREAD',
    );
    const during = await opened();
    assert.deepEqual(
      during.map((c) => [c.name, c.cmd]),
      [['tasuki:results', 'xread']],
      '300 waiters, one new connection',
    );
    const worker = new Worker(app, { logger: silentLogger() });
    await worker.start();
    assert.deepEqual(
      await Promise.all(waits),
      handles.map((_, i) => i),
    );
    // Still the same one connection for results (the worker brought its own two).
    const after = (await opened()).filter((c) => !c.name.startsWith('tasuki:worker'));
    assert.deepEqual(
      after.map((c) => [c.id, c.name]),
      during.map((c) => [c.id, c.name]),
    );
    await worker.stop();
  },
);

test('a task that finished before anyone waited is found at once', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'early', schema: z.object({}), handler: () => 'early' });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const h = await t.enqueue({});
  await until(async () => (await h.info())?.state === 'succeeded', 30_000, 'success');
  await worker.stop();
  // Its completion event came before this wait began to follow the queue, so only the wait's first
  // lookup can find it, or else the sweep of waited tasks after a 2 s block with no event (the
  // waiter's BLOCK_MS). The timeout runs from the call, before that block starts: resolving within
  // 1.9 s proves the lookup found it, and leaves the most room for a slow start under load.
  assert.equal(await h.result({ timeout: 1900 }), 'early');
});

test('lookups of unknown or malformed ids', async () => {
  const app = newApp(server());
  assert.equal(await app.getTask('1-0@default'), null);
  await assert.rejects(app.getTask('garbage'), (err: unknown) => {
    assert.ok(err instanceof TasukiError);
    assert.equal(err.code, 'E_TASK_ID');
    assert.match(err.message, /"garbage" is not a tasuki task id/);
    return true;
  });
  await assert.rejects(
    app.waitForResult('1-0@default', { timeout: 'soon' as never }),
    /timeout: is not a duration/,
  );
});
