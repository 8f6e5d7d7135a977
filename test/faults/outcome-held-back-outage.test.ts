// Fault 8.2 (Redis down): finished tasks re-run when their outcome is held back.
//
// A worker that finishes a task while Redis is unreachable (or refusing writes at maxmemory) keeps the
// outcome in memory and sends it again until Redis takes it. Meanwhile the task's stream entry is
// pending and idle, and once the outage has lasted longer than `claimIdle` another worker takes it
// over and runs it again, although the task is done.
//
// Expected: a task that finished during the outage is not run again by any worker after Redis returns:
// zero re-runs, also when a takeover was asked for just before the connection dropped (ioredis sends
// unanswered commands again after it reconnects). (Worker A below is paused for a moment after Redis
// returns, so that worker B reconnects first: with reconnect backoff and jitter either order happens;
// the test fixes the unlucky one.)
//
// A reclaim whose call spanned a lost connection is not adopted (src/worker/claims.ts).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { gated } from './fixtures/fault-app.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { quiet, runLines, scratch, startFaultWorker } from './support.js';

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
  // claimIdle above the reconnect backoff's cap (2 s, +20 % jitter): after Redis returns, worker A's
  // next reconnect attempt can be that far away, and a worker waits one claimIdle after it is back
  // before it takes anything over. (With claimIdle 1 s, A could lose the race by backoff alone.)
  const args = ['--claim-idle', '4s', '--concurrency', '1'];
  const a = await startFaultWorker(server(), prefix, runs, args);
  const h = await producer.enqueue({ i: 1, gate: gate('1') });
  await until(() => runLines(runs).length === 1, 10_000, 'worker A to start the task');
  const b = await startFaultWorker(server(), prefix, runs, args);

  // Redis first hangs, then dies: commands sent meanwhile (B's next reclaim round, every 2 s; A's
  // heartbeat) are in flight when the connection drops, and ioredis sends them again once it is back.
  process.kill(server().pid as number, 'SIGSTOP');
  await quiet(2500);
  writeFileSync(gate('1'), '');
  await until(() => runLines(runs).some((l) => l.startsWith('end 1')), 5000, 'the task to finish');
  await server().stop({ kill: true });
  await quiet(4500); // the outage lasts longer than claimIdle after the task finished

  a.child.kill('SIGSTOP');
  await server().server.start();
  await until(async () => (await workerConnections()) === 1, 15_000, 'worker B to reconnect');
  await quiet(500); // B is back and could take the task over; A is still paused
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
