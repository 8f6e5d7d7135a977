// Fault 8.6: a live worker's CPU-bound task is run twice.
//
// A handler that blocks the event loop (synchronous work) stops its worker's heartbeat, so after
// `claimIdle` another worker takes the task over and runs it a second time while the first worker
// is alive and still running it.
//
// Expected: a task running on a live worker is never run by another, even when its handler blocks
// the event loop for several times claimIdle: the task runs exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spin } from './fixtures/fault-app.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';
import { runLines, scratch, startFaultWorker } from './support.js';

const server = useRedis();

test('a handler that blocks the event loop for 3 x claimIdle runs once, with a second worker running', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const producer = app.task({ name: spin.name, schema: spin.definition.schema, handler: () => 0 });
  const { runs } = scratch();
  const args = ['--claim-idle', '1s', '--concurrency', '2'];
  // Both workers run before the task is enqueued: one takes it, the other could take it over.
  const a = await startFaultWorker(server(), prefix, runs, args);
  const b = await startFaultWorker(server(), prefix, runs, args);
  const h = await producer.enqueue({ ms: 3000 });
  assert.equal(await h.result({ timeout: '20s' }), 3000);
  // By now the other worker has had 2 s past claimIdle to take the task over (it looks every 500 ms).
  const starts = runLines(runs).filter((l) => l.startsWith('start'));
  assert.equal(starts.length, 1, `ran ${starts.length} times:\n${runLines(runs).join('\n')}`);
  for (const w of [a, b]) w.child.kill('SIGTERM');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.doesNotMatch(ra.stdout + rb.stdout, /took over tasks of a dead worker/);
  assert.equal(runLines(runs).filter((l) => l.startsWith('start')).length, 1);
});
