import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bookkeeping, count } from '../fixtures/counting-app.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { startWorker } from '../support/workers.js';

const server = useRedis();

test('SIGTERM during a burst: exit 0 within the grace time, nothing lost, nothing run twice', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const redis = server().client();
  const { runs } = bookkeeping(prefix);
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  const N = 2000;
  const env = { TASK_DELAY_MS: '20' };
  const args = ['--concurrency', '10', '--prefetch', '30', '--grace', '5s'];
  const stopping = await startWorker(server(), prefix, args, env);
  const handles = await producer.enqueueMany(Array.from({ length: N }, (_, i) => ({ args: { i } })));
  await until(async () => (await redis.hlen(runs.key({}))) >= 100, 30_000, '100 tasks to run');
  const signalledAt = Date.now();
  stopping.child.kill('SIGTERM');
  const run = await stopping.done;
  const tookMs = Date.now() - signalledAt;
  assert.equal(run.code, 0, run.stderr);
  assert.ok(tookMs < 5000, `took ${tookMs} ms to stop`);
  const stopped = run.stdout
    .split('\n')
    .filter((l) => l.includes('"worker stopped"'))
    .map((l) => JSON.parse(l) as { handedBack: number; abandoned: number });
  assert.equal(stopped.length, 1);
  assert.ok(stopped[0]!.handedBack > 0, 'unstarted tasks were handed back');
  assert.equal(stopped[0]!.abandoned, 0);

  // The rest is run by another worker, at once (no wait for claimIdle: handed back, not abandoned).
  const other = await startWorker(server(), prefix, ['--concurrency', '50', '--claim-idle', '10m'], env);
  const results = await Promise.all(handles.map((h) => h.result({ timeout: '60s' })));
  assert.deepEqual(
    results,
    Array.from({ length: N }, (_, i) => i),
  );
  const counts = await redis.hgetall(runs.key({}));
  assert.equal(Object.keys(counts).length, N);
  assert.deepEqual(
    Object.entries(counts).filter(([, n]) => n !== '1'),
    [],
    'no task ran twice',
  );
  other.child.kill('SIGTERM');
  assert.equal((await other.done).code, 0);
});

test('grace time over: running tasks are handed back and the worker still exits 0', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const redis = server().client();
  const { runs } = bookkeeping(prefix);
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  const w = await startWorker(server(), prefix, ['--concurrency', '3', '--grace', '300ms'], {
    TASK_DELAY_MS: '3000',
  });
  const handles = await producer.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ args: { i } })));
  await until(async () => (await handles[0]!.info())?.state === 'active', 10_000, 'a task to start');
  await new Promise((r) => setTimeout(r, 200));
  w.child.kill('SIGTERM');
  const run = await w.done;
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /"handedBack":3,"aborted":3,"abandoned":0/);
  assert.equal(await redis.hlen(runs.key({})), 0, 'none finished');
  for (const h of handles) assert.equal((await h.info())?.state, 'queued');
});

test('a second signal exits at once', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  const w = await startWorker(server(), prefix, ['--concurrency', '1', '--grace', '20s'], {
    TASK_DELAY_MS: '10000',
  });
  const h = await producer.enqueue({ i: 1 });
  await until(async () => (await h.info())?.state === 'active', 10_000, 'the task to start');
  const at = Date.now();
  w.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  w.child.kill('SIGTERM');
  const run = await w.done;
  assert.equal(run.code, 130);
  assert.ok(Date.now() - at < 3000);
  assert.match(run.stderr, /second SIGTERM[;:] exiting now/);
});
