// Control across processes: two `tasuki worker` processes, and the `tasuki` CLI in others — pause
// and resume, cancel, revoke and purge, each seen by whichever worker process holds the queue or
// the task. Tasks are counted in and out.
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { TaskFailedError, type Tasuki } from '../../src/index.js';
import { CLI, cliEnv, finished, ROOT, runCli, spawnCli, waitForOutput, type CliRun } from '../support/cli.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';
import { defineControlTasks } from './fixtures/control-app.js';

const server = useRedis();
const APP = 'test/control/fixtures/control-app.ts';
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Running {
  child: ChildProcess;
  done: Promise<CliRun>;
}

async function startWorker(prefix: string): Promise<Running> {
  const child = spawnCli(['worker', '--app', APP, '--concurrency', '4'], {
    REDIS_URL: server().url,
    TEST_PREFIX: prefix,
  });
  children.push(child);
  const done = finished(child, 180_000);
  await waitForOutput(child, /worker started|"level":[4-6]0/, 90_000);
  return { child, done };
}

function cli(prefix: string, args: string[]): Promise<CliRun> {
  return runCli([...args, '--app', APP], { REDIS_URL: server().url, TEST_PREFIX: prefix });
}

function json<T>(run: CliRun): T {
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as T;
}

/** The app of the fixture, on the test's prefix (the fixture's tasks, defined again on it). */
function fixtureApp(prefix: string): { app: Tasuki } & ReturnType<typeof defineControlTasks> {
  const app = newApp(server(), { prefix, queues: ['default', 'other'] });
  return { app, ...defineControlTasks(app) };
}

test('pause, resume, cancel and revoke from the CLI reach both worker processes', async () => {
  const prefix = randomPrefix();
  const { app, work: w, canary: c } = fixtureApp(prefix);
  const workers = await Promise.all([startWorker(prefix), startWorker(prefix)]);
  const pids = workers.map((x) => x.child.pid);

  // Pause: both workers hear of it.
  const heard = workers.map((x) => waitForOutput(x.child, /queue paused/, 20_000));
  assert.deepEqual(json(await cli(prefix, ['queue', 'pause', 'default', '--by', 'ops', '--json'])), [
    { queue: 'default', paused: true },
  ]);
  await Promise.all(heard);
  const tasks = await w.enqueueMany(Array.from({ length: 20 }, (_, i) => ({ args: { i } })));
  // Each worker reads both queues in one XREADGROUP: a canary of the other queue that a worker runs
  // was fetched by a read that left the paused queue out (it would have returned its tasks too).
  const ranCanary = new Set<number>();
  for (let n = 0; n < 200 && ranCanary.size < 2; n++) {
    ranCanary.add(await (await c.enqueue({})).result({ timeout: '10s' }));
  }
  assert.deepEqual([...ranCanary].sort(), [...pids].sort());
  const status = json<{ paused: boolean; waiting: number; pausedBy?: { by: string } }[]>(
    await cli(prefix, ['queue', 'status', 'default', '--json']),
  );
  assert.equal(status[0]?.paused, true);
  assert.equal(status[0]?.waiting, 20);
  assert.equal(status[0]?.pausedBy?.by, 'ops');

  // Revoke one of the waiting tasks from the CLI; resume; the other 19 run once each.
  const revoked = json<{ outcome: string; was: string }[]>(
    await cli(prefix, ['revoke', tasks[0]!.id, '--json']),
  );
  assert.deepEqual(
    revoked.map((r) => [r.outcome, r.was]),
    [['revoked', 'queued']],
  );
  assert.deepEqual(json(await cli(prefix, ['queue', 'resume', 'default', '--json'])), [
    { queue: 'default', resumed: true },
  ]);
  const results = await Promise.all(tasks.slice(1).map((t) => t.result({ timeout: '20s' })));
  assert.deepEqual(
    results.map((r) => (r as { i: number }).i),
    Array.from({ length: 19 }, (_, i) => i + 1),
  );
  assert.equal((await app.getTask(tasks[0]!.id))?.state, 'revoked');

  // Cancel a long task from the CLI: whichever worker runs it stops it at once.
  const long = await w.enqueue({ i: 99, ms: 60_000 });
  await until(async () => (await app.getProgress(long.id)) !== null, 10_000, 'the long task to start');
  const started = Date.now();
  const cancelled = json<{ outcome: string; worker: string }[]>(
    await cli(prefix, ['cancel', long.id, '--by', 'ops:bob', '--json']),
  );
  assert.equal(cancelled[0]?.outcome, 'cancelling');
  await assert.rejects(long.result({ timeout: '10s' }), (err: unknown) => {
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.remote.code, 'E_CANCELLED');
    return true;
  });
  assert.ok(Date.now() - started < 10_000);
  const info = await app.getTask(long.id);
  assert.equal(info?.state, 'cancelled');
  assert.match(info?.error?.message ?? '', /ops:bob/);

  // An unknown id: exit 2, said.
  const unknown = await cli(prefix, ['revoke', '1-0@default']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stdout, /unknown/);

  for (const x of workers) x.child.kill('SIGTERM');
  const runs = await Promise.all(workers.map((x) => x.done));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
});

const hasScript = spawnSync('script', ['--version']).status === 0;

test('queue purge: refuses without a terminal unless --yes; on a terminal asks for the queue name', async () => {
  const prefix = randomPrefix();
  const { app, work: w } = fixtureApp(prefix);
  await w.enqueueMany(Array.from({ length: 7 }, (_, i) => ({ args: { i } })));
  await w.enqueue({ i: 8 }, { delay: '1h' });

  const refused = await cli(prefix, ['queue', 'purge', 'default']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /refusing to purge queue "default" without confirmation.*--yes/);
  assert.equal((await app.queueStats('default')).waiting, 7);

  if (hasScript) {
    // `script` runs the CLI on a pseudo-terminal and types what it is given there.
    const env = cliEnv({ REDIS_URL: server().url, TEST_PREFIX: prefix });
    const command = [process.execPath, ...CLI, 'queue', 'purge', 'default', '--app', APP]
      .map((a) => `'${a}'`)
      .join(' ');
    const typed = (answer: string): string =>
      spawnSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env, encoding: 'utf8', input: answer })
        .stdout;
    // A wrong answer deletes nothing.
    const no = typed('nope\n');
    assert.match(no, /deletes 7 waiting and 1 delayed tasks of queue "default".*Type the queue's name/s);
    assert.match(no, /not confirmed; nothing was purged/);
    assert.equal((await app.queueStats('default')).waiting, 7);
    // The queue's name: purged.
    assert.match(typed('default\n'), /default: purged 7 waiting and 1 delayed tasks/);
    await w.enqueueMany(Array.from({ length: 7 }, (_, i) => ({ args: { i } })));
    await w.enqueue({ i: 8 }, { delay: '1h' });
  }

  const purged = json<{ waiting: number; delayed: number }>(
    await cli(prefix, ['queue', 'purge', 'default', '--yes', '--json']),
  );
  assert.deepEqual(purged, { queue: 'default', waiting: 7, delayed: 1 });
  const s = await app.queueStats('default');
  assert.equal(s.waiting + s.delayed, 0);
});
