import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { TasukiMetrics } from '../../src/metrics/metrics.js';
import { serveMetrics } from '../../src/metrics/server.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { finished, runCli, spawnCli, waitForOutput } from '../support/cli.js';

const server = useRedis();

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('metrics: outcomes by task, durations, retries, dead letters, queue depth and lag, locks, Redis memory; no task ids', async () => {
  const app = newApp(server(), { queues: ['q', 'idle'] });
  const ok = app.task({ name: 'ok', queue: 'q', schema: z.object({}), handler: () => 1 });
  const bad = app.task({
    name: 'bad',
    queue: 'q',
    schema: z.object({}),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 5 },
    handler: () => {
      throw new Error('no');
    },
  });
  const waiting = app.task({ name: 'waiting', queue: 'idle', schema: z.object({}), handler: () => 1 });
  const metrics = new TasukiMetrics(app, { processMetrics: false });
  const worker = new Worker(app, { queues: ['q'] });
  metrics.observe(worker);
  const http = await serveMetrics(metrics, { port: 0 });
  await worker.start();
  try {
    const handles = [await ok.enqueue({}), await ok.enqueue({}), await bad.enqueue({})];
    await Promise.allSettled(handles.map((h) => h.result()));
    await until(() => worker.counts.failed === 1 && worker.counts.succeeded === 2, 5000, 'outcomes');
    const queued = await waiting.enqueueMany([{ args: {} }, { args: {} }, { args: {} }]);
    const locks = await app.locks({ ttl: '1s' });
    await locks.withLock('nightly', () => undefined);

    const res = await fetch(http.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    await until(() => worker.counts.succeeded === 2, 100);
    assert.equal(sample(text, 'tasuki_tasks_total', 'queue="q",task="ok",outcome="succeeded"'), 2);
    assert.equal(sample(text, 'tasuki_tasks_total', 'queue="q",task="bad",outcome="retried"'), 1);
    assert.equal(sample(text, 'tasuki_tasks_total', 'queue="q",task="bad",outcome="dead"'), 1);
    assert.equal(sample(text, 'tasuki_task_retries_total', 'queue="q",task="bad"'), 1);
    assert.equal(sample(text, 'tasuki_dead_letters_total', 'queue="q",task="bad",reason="max-attempts"'), 1);
    assert.equal(
      sample(text, 'tasuki_task_duration_seconds_count', 'queue="q",task="ok",outcome="succeeded"'),
      2,
    );
    assert.equal(sample(text, 'tasuki_queue_tasks', 'queue="idle",state="waiting"'), 3);
    assert.equal(sample(text, 'tasuki_queue_tasks', 'queue="q",state="dead"'), 1);
    assert.equal(sample(text, 'tasuki_queue_tasks', 'queue="q",state="waiting"'), 0);
    assert.ok((sample(text, 'tasuki_queue_lag_seconds', 'queue="idle"') ?? -1) >= 0);
    assert.equal(sample(text, 'tasuki_queue_lag_seconds', 'queue="q"'), 0);
    assert.ok((sample(text, 'tasuki_redis_memory_bytes', 'kind="used"') ?? 0) > 0);
    assert.equal(sample(text, 'tasuki_lock_acquisitions_total'), 1);
    assert.equal(sample(text, 'tasuki_lock_losses_total'), 0);
    // Bounded labels: no task id (entry ids look like 1732391234567-0) in any label.
    for (const h of [...handles, ...queued]) assert.ok(!text.includes(h.id.split('@')[0] as string));
    assert.doesNotMatch(text, /\d{13}-\d+/);
    assert.equal((await fetch(http.url.replace('/metrics', '/other'))).status, 404);
  } finally {
    await worker.stop();
    await http.close();
    metrics.close();
  }
});

test('metrics: a task name the app does not define is counted as "other"', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const metrics = new TasukiMetrics(app, { processMetrics: false });
  const worker = new Worker(app, { queues: ['q'], unknownTasks: 'dead-letter' });
  metrics.observe(worker);
  await worker.start();
  try {
    const redis = await app.redis();
    await redis.xadd(app.keys.stream.key({ queue: 'q' }), '*', 'm', JSON.stringify(['user-1234-secret', {}]));
    await until(() => worker.counts.failed === 1, 5000, 'dead letter');
    await until(async () => (await metrics.text()).includes('outcome="dead"'), 2000, 'event');
    const text = await metrics.text();
    assert.equal(sample(text, 'tasuki_tasks_total', 'queue="q",task="other",outcome="dead"'), 1);
    assert.ok(!text.includes('user-1234-secret'));
  } finally {
    await worker.stop();
    metrics.close();
  }
});

test('tasuki worker --metrics-port serves the worker’s counts; a port in use is a clear error', async () => {
  const prefix = randomPrefix();
  const child = spawnCli(['worker', '--app', 'test/fixtures/counting-app.ts', '--metrics-port', '0'], {
    REDIS_URL: server().url,
    TEST_PREFIX: prefix,
    TASUKI_LOG_LEVEL: 'info',
  });
  const done = finished(child, 120_000);
  // "serving metrics" is logged before "worker started".
  const line = await waitForOutput(child, /worker started/, 90_000);
  const url = /"url":"([^"]+)"/.exec(line)?.[1];
  assert.ok(url, line);
  const app = newApp(server(), { prefix, queues: ['default'] });
  const t = app.task({ name: 'count', schema: z.object({ i: z.number().int() }), handler: () => 0 });
  await (await t.enqueue({ i: 1 })).result({ timeout: '20s' });
  let text = '';
  await until(
    async () => (text = await (await fetch(url)).text()).includes('outcome="succeeded"'),
    5000,
    'counted',
  );
  assert.equal(sample(text, 'tasuki_tasks_total', 'queue="default",task="count",outcome="succeeded"'), 1);
  assert.match(text, /process_cpu_seconds_total/);
  const busy = await runCli(
    ['worker', '--app', 'test/fixtures/counting-app.ts', '--metrics-port', new URL(url).port],
    { REDIS_URL: server().url, TEST_PREFIX: prefix },
    90_000,
  );
  assert.equal(busy.code, 2, busy.stderr);
  assert.match(
    busy.stderr,
    /cannot serve metrics on 127\.0\.0\.1:\d+ \(EADDRINUSE\); pick another --metrics-port/,
  );
  child.kill('SIGTERM');
  assert.equal((await done).code, 0);
});

test('metrics of a process that runs no worker: observe an app subscription', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const t = app.task({ name: 'ok', queue: 'q', schema: z.object({}), handler: () => 1 });
  const metrics = new TasukiMetrics(app, { processMetrics: false });
  const sub = app.subscribe();
  metrics.observe(sub);
  await sub.ready;
  const worker = new Worker(app);
  await worker.start();
  try {
    await Promise.all([await t.enqueue({}), await t.enqueue({})].map((h) => h.result()));
    await until(async () => (await metrics.text()).includes('outcome="succeeded"} 2'), 5000, 'counted');
  } finally {
    await worker.stop();
    await sub.close();
    metrics.close();
  }
});

test('tasuki beat --metrics-port counts its ticks and its lease acquisitions', async () => {
  const prefix = randomPrefix();
  const child = spawnCli(['beat', '--app', 'test/beat/fixtures/app.ts', '--metrics-port', '0'], {
    REDIS_URL: server().url,
    PREFIX: prefix,
    TASUKI_LOG_LEVEL: 'info',
  });
  const done = finished(child, 120_000);
  const line = await waitForOutput(child, /serving metrics.*\n/, 90_000);
  const url = /"url":"([^"]+)"/.exec(line)?.[1];
  assert.ok(url, line);
  let text = '';
  await until(
    async () =>
      (text = await (await fetch(url)).text()).includes(
        'tasuki_beat_ticks_total{schedule="every-second",outcome="enqueued"}',
      ),
    20_000,
    'a tick counted',
  );
  assert.ok((sample(text, 'tasuki_lock_acquisitions_total') ?? 0) >= 1, 'the lease is a lock acquisition');
  child.kill('SIGTERM');
  assert.equal((await done).code, 0);
});
