// Fault 8.2: finished tasks re-run when their outcome is held back.
//
// A worker that finishes a task while Redis is unreachable (or refusing writes at maxmemory) keeps the
// outcome in memory and sends it again until Redis takes it. Meanwhile the task's stream entry is
// pending and idle, and once the outage has lasted longer than `claimIdle` another worker takes it
// over and runs it again, although the task is done.
//
// Expected: a task that finished during the outage is not run again by any worker after Redis returns:
// zero re-runs. (Worker A below is paused for a moment after Redis returns, so that worker B
// reconnects first: with reconnect backoff and jitter either order happens; the test fixes the
// unlucky one.)
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { gated } from './fixtures/fault-app.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import {
  capturingLogger,
  fillUntilOom,
  liftOom,
  quiet,
  runLines,
  scratch,
  startFaultWorker,
} from './support.js';

const server = useRedis({ appendonly: true });

/** Connections of `tasuki worker` processes (main connections) now open on the server. */
async function workerConnections(): Promise<number> {
  const list = String(await server().client().client('LIST'));
  return list.split('\n').filter((l) => /name=tasuki:worker /.test(l)).length;
}

test('Redis down longer than claimIdle: a task that finished during the outage is not run again', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const producer = app.task({ name: gated.name, schema: gated.definition.schema, handler: () => 0 });
  const { runs, gate } = scratch();
  const args = ['--claim-idle', '1s', '--concurrency', '1'];
  const a = await startFaultWorker(server(), prefix, runs, args);
  const h = await producer.enqueue({ i: 1, gate: gate('1') });
  await until(() => runLines(runs).length === 1, 10_000, 'worker A to start the task');
  const b = await startFaultWorker(server(), prefix, runs, args);

  await server().stop({ kill: true });
  writeFileSync(gate('1'), '');
  await until(() => runLines(runs).some((l) => l.startsWith('end 1')), 5000, 'the task to finish');
  await quiet(2000); // the outage lasts 2 x claimIdle after the task finished

  a.child.kill('SIGSTOP');
  await server().server.start();
  await until(async () => (await workerConnections()) === 1, 15_000, 'worker B to reconnect');
  await quiet(500); // B's reclaimer runs every 500 ms
  a.child.kill('SIGCONT');

  assert.equal(await h.result({ timeout: '15s' }), 1);
  await quiet(1500);
  const starts = runLines(runs).filter((l) => l.startsWith('start'));
  assert.equal(starts.length, 1, `ran ${starts.length} times:\n${runLines(runs).join('\n')}`);
  for (const w of [a, b]) w.child.kill('SIGTERM');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.doesNotMatch(rb.stdout, /took over tasks of a dead worker/);
});

test('Redis at maxmemory longer than claimIdle: a task that finished meanwhile is not run again', async () => {
  const prefix = randomPrefix();
  const redis = server().client();
  const app = newApp(server(), { prefix });
  let runs = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const task = app.task({
    name: 'once',
    schema: z.object({}),
    handler: async () => {
      runs++;
      await gate;
      return 'done';
    },
  });
  const opts = { logger: capturingLogger().logger, claimIdle: 1000, reclaimInterval: 100, concurrency: 1 };
  const a = new Worker(app, opts);
  await a.start();
  const h = await task.enqueue({});
  await until(() => runs === 1, 5000, 'worker A to start the task');
  const b = new Worker(app, opts);
  await b.start();
  try {
    await fillUntilOom(redis, prefix);
    open(); // finishes at OOM
    await quiet(3000); // 3 x claimIdle at OOM
    assert.equal(runs, 1, 'not run again while its outcome waits for Redis to take it');
    await liftOom(redis);
    assert.equal(await h.result({ timeout: '5s' }), 'done');
    await quiet(1000);
    assert.equal(runs, 1);
    assert.equal(b.counts.succeeded, 0, 'worker B ran nothing');
  } finally {
    await liftOom(redis);
    await Promise.all([a.stop(), b.stop()]);
  }
});
