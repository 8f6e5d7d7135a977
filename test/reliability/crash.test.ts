import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bookkeeping, count } from '../fixtures/counting-app.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { startWorker } from '../support/workers.js';

const server = useRedis();

test('10,000 tasks, 3 worker processes, one SIGKILLed midway: every task completes', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const redis = server().client();
  const { runs, runlog } = bookkeeping(prefix);
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  const N = 10_000;
  const args = ['--concurrency', '20', '--prefetch', '20', '--claim-idle', '1500ms'];
  const workers = await Promise.all([0, 1, 2].map(() => startWorker(server(), prefix, args)));
  const handles: { id: string }[] = [];
  for (let i = 0; i < N; i += 1000) {
    handles.push(
      ...(await producer.enqueueMany(Array.from({ length: 1000 }, (_, j) => ({ args: { i: i + j } })))),
    );
  }
  // Kill one worker while the queue is being worked.
  await until(async () => (await redis.hlen(runs.key({}))) >= N / 4, 60_000, 'a quarter of the tasks to run');
  const victim = workers[0]!;
  victim.child.kill('SIGKILL');
  const victimPid = String(victim.child.pid);
  await victim.done;

  const results = await Promise.all(handles.map((h) => app.waitForResult(h.id, { timeout: '90s' })));
  assert.deepEqual(
    results,
    Array.from({ length: N }, (_, i) => i),
  );

  const counts = await redis.hgetall(runs.key({}));
  assert.equal(Object.keys(counts).length, N, 'every task ran');
  const twice = Object.entries(counts).filter(([, n]) => Number(n) > 1);
  const log = await redis.lrange(runlog.key({}), 0, -1);
  const byVictim = new Set(log.filter((l) => l.endsWith(`:${victimPid}`)).map((l) => l.split(':')[0]));
  console.log(`duplicates: ${twice.length} of ${N} (the killed worker held at most 40)`);
  for (const [i, n] of twice) {
    assert.equal(Number(n), 2, `task ${i} ran ${n} times`);
    assert.ok(byVictim.has(i), `task ${i} ran twice but never on the killed worker`);
  }
  assert.ok(twice.length <= 40, `${twice.length} duplicates: more than the killed worker could hold`);

  const stream = app.keys.stream.key({ queue: 'default' });
  assert.equal(await redis.xlen(stream), 0);
  assert.equal(((await redis.xpending(stream, 'tasuki')) as [number])[0], 0);
  for (const w of workers.slice(1)) w.child.kill('SIGTERM');
  for (const w of workers.slice(1)) assert.equal((await w.done).code, 0);
});
