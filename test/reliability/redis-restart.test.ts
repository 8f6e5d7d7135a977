import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bookkeeping, count } from '../fixtures/counting-app.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { startWorker } from '../support/workers.js';

const server = useRedis({ appendonly: true });

test('Redis killed and restarted (AOF on) mid-run: nothing lost', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const { runs } = bookkeeping(prefix);
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  const N = 3000;
  const w = await startWorker(server(), prefix, ['--concurrency', '20', '--claim-idle', '2s'], {
    TASK_DELAY_MS: '2',
  });
  const handles = await producer.enqueueMany(Array.from({ length: N }, (_, i) => ({ args: { i } })));
  const redis = server().client();
  await until(async () => (await redis.hlen(runs.key({}))) >= N / 5, 30_000, 'a fifth of the tasks to run');
  await server().restart({ kill: true });
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '60s' })));
  assert.deepEqual(
    results,
    Array.from({ length: N }, (_, i) => i),
  );
  const stream = app.keys.stream.key({ queue: 'default' });
  await until(async () => (await redis.xlen(stream)) === 0, 10_000, 'the stream to empty');
  assert.equal(Object.keys(await redis.hgetall(runs.key({}))).length, N);
  w.child.kill('SIGTERM');
  const run = await w.done;
  assert.equal(run.code, 0);
  // Logged once per incident, not per task per millisecond.
  const errors = run.stdout.split('\n').filter((l) => l.includes('"level":50'));
  assert.ok(errors.length <= 10, `${errors.length} error lines:\n${errors.join('\n')}`);
});

test('Redis restarted (AOF on) between enqueue and work: every task is still there and runs', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const { runs } = bookkeeping(prefix);
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  const handles = [
    ...(await producer.enqueueMany(Array.from({ length: 500 }, (_, i) => ({ args: { i } })))),
    await producer.enqueue({ i: 500 }, { delay: '300ms' }),
  ];
  await server().restart();
  const w = await startWorker(server(), prefix, ['--concurrency', '20']);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '30s' })));
  assert.deepEqual(
    results,
    Array.from({ length: 501 }, (_, i) => i),
  );
  assert.equal(await server().client().hlen(runs.key({})), 501);
  w.child.kill('SIGTERM');
  assert.equal((await w.done).code, 0);
});
