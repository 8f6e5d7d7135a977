// The memory guard (issue 11, point 3): producers know Redis's headroom from a background sample of
// INFO memory, hold enqueues above the high watermark up to maxWait, then fail with a typed,
// retryable E_MEMORY_FULL that says what is full; nothing of a refused task is written. No
// maxmemory: the guard is off. An evicting maxmemory-policy is warned about at start.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { MemoryFullError, tasuki, Worker, type Tasuki } from '../../src/index.js';
import { TestRedis } from '../../src/testing/index.js';
import { capturingLogger, type LogLine } from '../faults/support.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis({ args: ['--maxmemory-policy', 'noeviction'] });

function setup(guard: Parameters<typeof newApp>[1] = {}) {
  const app = newApp(server(), { queues: ['default'], ...guard });
  const task = app.task({
    name: 'upload.process',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => n,
  });
  const admin = server().client();
  const appKeys = () => admin.keys(`${app.keys.space.prefix}:*`);
  return { app, task, admin, appKeys };
}

async function usedMemory(admin: ReturnType<TestRedis['client']>): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
}

/** Every kind of enqueue: plain, delayed, idempotent, bulk (one script), bulk mixed (one MULTI). */
function everyKind(task: ReturnType<typeof setup>['task']): [string, () => Promise<unknown>][] {
  return [
    ['enqueue', () => task.enqueue({ n: 1 })],
    ['enqueue delayed', () => task.enqueue({ n: 2 }, { delay: '1h' })],
    ['enqueue idempotent', () => task.enqueue({ n: 3 }, { idempotencyKey: 'once' })],
    ['enqueueMany', () => task.enqueueMany([{ args: { n: 4 } }, { args: { n: 5 } }])],
    [
      'enqueueMany mixed',
      () =>
        task.enqueueMany([
          { args: { n: 6 } },
          { args: { n: 7 }, options: { delay: '1h' } },
          { args: { n: 8 }, options: { idempotencyKey: 'twice' } },
        ]),
    ],
  ];
}

test('above the high watermark every kind of enqueue waits maxWait, then fails E_MEMORY_FULL saying what is full; nothing is written', async () => {
  const { app, task, admin, appKeys } = setup({
    memoryGuard: { highWatermark: 0.5, maxWait: 300, sampleInterval: '1h' },
  });
  await app.redis();
  // used_memory at 80 % of maxmemory: over the guard's 50 %, while Redis itself still accepts writes.
  await admin.config('SET', 'maxmemory', String(Math.round((await usedMemory(admin)) / 0.8)));
  try {
    await app.memoryGuard.sample();
    assert.equal(app.memoryGuard.isFull, true);
    for (const [what, attempt] of everyKind(task)) {
      const t0 = Date.now();
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof MemoryFullError, `${what}: ${String(err)}`);
        assert.equal(err.code, 'E_MEMORY_FULL');
        assert.equal(err.retryable, true);
        assert.equal(err.watermark, 0.5);
        assert.ok(err.reading && err.reading.max > 0 && err.reading.used > err.reading.max / 2);
        assert.match(
          err.message,
          /used_memory [\d.]+ MiB of maxmemory [\d.]+ MiB \(\d+ %\), above the memory guard's high watermark of 50 %, and no headroom came within 300 ms; nothing was written\. This is retryable/,
        );
        assert.match(err.message, /raise maxmemory/);
        return true;
      });
      assert.ok(Date.now() - t0 >= 290, `${what} gave up after ${Date.now() - t0} ms`);
      assert.deepEqual(await appKeys(), [], `${what} wrote something`);
    }
    // It was the guard: Redis itself takes writes.
    assert.equal(await admin.set(`${randomPrefix()}:probe`, 'x'), 'OK');
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
});

test('a held enqueue goes through as soon as a sample shows headroom again', async () => {
  const { app, task, admin } = setup({
    memoryGuard: { highWatermark: 0.5, maxWait: '20s', sampleInterval: '1h' },
  });
  await app.redis();
  await admin.config('SET', 'maxmemory', String(Math.round((await usedMemory(admin)) / 0.8)));
  let handle: Promise<unknown>;
  try {
    await app.memoryGuard.sample();
    const t0 = Date.now();
    handle = task.enqueue({ n: 1 });
    await until(() => app.memoryGuard.waiting === 1, 5000, 'the enqueue to wait for headroom');
    await admin.config('SET', 'maxmemory', '0');
    await handle;
    // Waiting enqueues make the guard sample every 100 ms: it resumed long before maxWait.
    assert.ok(Date.now() - t0 < 10_000, `resumed after ${Date.now() - t0} ms`);
    assert.equal(await admin.xlen(app.keys.stream.key({ queue: 'default' })), 1);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
});

test('Redis filled to maxmemory (noeviction): enqueue fails E_MEMORY_FULL after the bound, nothing half-written; it works again once memory is freed', async () => {
  const { app, task, admin, appKeys } = setup({ memoryGuard: { maxWait: 200, sampleInterval: '1h' } });
  await app.redis();
  const fill = randomPrefix();
  const big = 'x'.repeat(64 * 1024);
  const pipe = admin.pipeline();
  for (let i = 0; i < 64; i++) pipe.set(`${fill}:fill:${i}`, big);
  await pipe.exec();
  await admin.config('SET', 'maxmemory', String((await usedMemory(admin)) - 1024 * 1024));
  try {
    await assert.rejects(admin.set(`${fill}:probe`, 'x'.repeat(1024)), /OOM/, 'Redis is at maxmemory');
    await app.memoryGuard.sample();
    for (const [what, attempt] of everyKind(task)) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof MemoryFullError, `${what}: ${String(err)}`);
        assert.match(err.message, /no headroom came within 200 ms; nothing was written/);
        return true;
      });
      assert.deepEqual(
        await appKeys(),
        [],
        `${what} wrote something: no entry, delayed member, parked message or idempotency key`,
      );
    }
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  await app.memoryGuard.sample();
  for (const [, attempt] of everyKind(task)) await attempt();
  assert.equal(await admin.xlen(app.keys.stream.key({ queue: 'default' })), 6);
  assert.equal(await admin.zcard(app.keys.delayed.key({ queue: 'default' })), 2);
  assert.equal(await admin.hlen(app.keys.parked.key({ queue: 'default' })), 2);
  await admin.del(...(await admin.keys(`${fill}:*`)));
});

test('without maxmemory the guard is off; memoryGuard: false turns it off; enqueues never call INFO', async () => {
  const { app, task, admin } = setup({ memoryGuard: { highWatermark: 0.01, sampleInterval: '1h' } });
  await app.redis();
  await app.memoryGuard.sample();
  assert.equal(app.memoryGuard.isFull, false, 'maxmemory 0: nothing to guard');
  assert.equal(app.memoryGuard.lastReading?.max, 0);
  await admin.config('RESETSTAT');
  for (let i = 0; i < 200; i++) await task.enqueue({ n: i });
  await task.enqueueMany(Array.from({ length: 50 }, (_, i) => ({ args: { n: i } })));
  const stats = await admin.info('commandstats');
  assert.doesNotMatch(stats, /cmdstat_info:/, 'no INFO per enqueue: the guard reads a cached flag');
  assert.doesNotMatch(stats, /cmdstat_config:/);

  const off = setup({ memoryGuard: false });
  await off.app.redis();
  await admin.config('SET', 'maxmemory', String(Math.round((await usedMemory(admin)) / 0.8)));
  try {
    await off.app.memoryGuard.sample();
    assert.equal(off.app.memoryGuard.isFull, false);
    await off.task.enqueue({ n: 1 });
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
});

function policyWarnings(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((l) => /maxmemory-policy/.test(l.msg));
}

test('an evicting maxmemory-policy is warned about once at the first connection, and at worker start', async () => {
  const lru = await TestRedis.start({ args: ['--maxmemory-policy', 'allkeys-lru'] });
  const apps: Tasuki[] = [];
  try {
    const { logger, lines } = capturingLogger();
    const app = tasuki({ redis: lru.url, prefix: randomPrefix(), logger });
    apps.push(app);
    app.task({ name: 'noop', schema: z.object({}), handler: () => 1 });
    await app.redis();
    await app.redis();
    const warned = policyWarnings(lines);
    assert.equal(warned.length, 1, JSON.stringify(lines));
    assert.equal(warned[0]?.level, 40);
    assert.match(
      warned[0]?.msg ?? '',
      /maxmemory-policy is "allkeys-lru", not "noeviction".*lost without an error/,
    );
    const worker = new Worker(app, { logger });
    await worker.start();
    await worker.stop();
    assert.equal(policyWarnings(lines).length, 2, 'the worker warns too');

    // noeviction (the test server): no warning.
    const quiet = capturingLogger();
    const good = tasuki({ redis: server().url, prefix: randomPrefix(), logger: quiet.logger });
    apps.push(good);
    await good.redis();
    assert.deepEqual(policyWarnings(quiet.lines), []);
  } finally {
    await Promise.all(apps.map((a) => a.close()));
    await lru.close();
  }
});

test('INFO and CONFIG not allowed (as on managed Redis): said once each, and the app goes on', async () => {
  const admin = server().client();
  const user = `u${randomPrefix()}`;
  await admin.acl('SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', '-info', '-config');
  const { logger, lines } = capturingLogger();
  const app = tasuki({
    redis: `redis://${user}:secret@127.0.0.1:${server().port}`,
    prefix: randomPrefix(),
    logger,
  });
  try {
    const task = app.task({ name: 'noop', schema: z.object({}), handler: () => 1 });
    await app.redis();
    await task.enqueue({});
    await app.memoryGuard.sample();
    const said = lines.map((l) => l.msg);
    assert.equal(
      said.filter((m) => /memory guard off: INFO memory is not allowed/.test(m)).length,
      1,
      JSON.stringify(said),
    );
    assert.equal(
      said.filter((m) => /cannot read maxmemory-policy \(CONFIG GET is not allowed/.test(m)).length,
      1,
    );
  } finally {
    await app.close();
    await admin.acl('DELUSER', user);
  }
});

test("Redis's own OOM refusal (before the guard's next sample) is the same MemoryFullError, quoting Redis and the last sample", async () => {
  const { app, task, admin, appKeys } = setup({ memoryGuard: { sampleInterval: '1h' } });
  await app.redis();
  await admin.config('SET', 'maxmemory', String(1024 * 1024 * 1024));
  try {
    await app.memoryGuard.sample(); // headroom: 1 GiB
    await admin.config('SET', 'maxmemory', '1'); // full, and the guard has not looked since
    await assert.rejects(task.enqueue({ n: 1 }), (err: unknown) => {
      assert.ok(err instanceof MemoryFullError, String(err));
      assert.equal(err.retryable, true);
      assert.equal(err.watermark, undefined, 'Redis refused, not the guard');
      assert.match(
        err.message,
        /Redis refused the write as out of memory \(last sample: used_memory [\d.]+ MiB of maxmemory 1024\.0 MiB \(0 %\)\): Redis said "OOM command not allowed[^"]*"; nothing was written/,
      );
      return true;
    });
    assert.deepEqual(await appKeys(), []);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
});
