import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { busy, busyKeys } from '../fixtures/busy-app.js';
import { finished, spawnCli, waitForOutput, type CliRun } from '../support/cli.js';
import { newApp, randomPrefix, until, useRedis } from '../support/redis.js';

const server = useRedis();

/** Connections of heartbeat threads on the test server (tests in this file run one at a time). */
async function heartbeatConnections(): Promise<number> {
  const list = (await server().client().client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(' name=tasuki:worker-heartbeat ')).length;
}

/** A `tasuki worker` process on the busy app, started. */
async function startBusyWorker(
  prefix: string,
  args: string[],
): Promise<{ pid: number; done: Promise<CliRun>; kill: (s: NodeJS.Signals) => void }> {
  const child = spawnCli(['worker', '--app', 'test/fixtures/busy-app.ts', ...args], {
    REDIS_URL: server().url,
    TEST_PREFIX: prefix,
  });
  const done = finished(child, 120_000);
  await waitForOutput(child, /worker started|"level":[4-6]0/, 30_000).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`worker did not start: ${(err as Error).message}\n${(await done).stderr}`);
  });
  return { pid: child.pid as number, done, kill: (s) => child.kill(s) };
}

test('a handler that blocks the event loop for 3x claimIdle on a live worker runs once: no other worker takes it over', async () => {
  const prefix = randomPrefix();
  const app = newApp(server(), { prefix });
  const redis = server().client();
  const keys = busyKeys(prefix);
  const producer = app.task({ name: busy.name, schema: busy.definition.schema, handler: () => 0 });
  // claimIdle 3 s: heartbeats every second, and each worker looks for idle tasks every 1.5 s. The
  // handler keeps its event loop busy for 9 s, three claimIdle periods. (1 s was too tight on a
  // machine at load 15: a starved thread missed heartbeats for over a second.)
  const claimIdleMs = 3000;
  const args = ['--concurrency', '1', '--prefetch', '0', '--claim-idle', `${claimIdleMs}ms`];
  const workers = await Promise.all([0, 1].map(() => startBusyWorker(prefix, args)));

  const h = await producer.enqueue({ ms: 3 * claimIdleMs });
  // Started (a signal from the handler, before its busy loop): one worker's event loop is now stuck.
  const started = await redis.blpop(keys.started.key({}), 30);
  assert.ok(started, 'the task started');
  const runner = Number(started[1]);
  const result = await app.waitForResult(h.id, { timeout: '30s' });

  // Graceful stops wait for running handlers: after them, a second run would have been counted.
  for (const w of workers) w.kill('SIGTERM');
  const runs = await Promise.all(workers.map((w) => w.done));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);

  assert.deepEqual(
    await redis.lrange(keys.finished.key({}), 0, -1),
    [String(runner)],
    'the handler ran to its end exactly once, on the worker that started it',
  );
  assert.deepEqual(await redis.lrange(keys.started.key({}), 0, -1), [], 'no other run started');
  assert.equal(result, runner, 'the result comes from the worker that started it');
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'succeeded');
  assert.match(info?.worker ?? '', new RegExp(`:${runner}:`), 'recorded by the worker that ran it');
  for (const [i, r] of runs.entries()) {
    assert.doesNotMatch(
      r.stdout + r.stderr,
      /took over tasks/,
      `worker ${workers[i]?.pid} took the task over`,
    );
    assert.doesNotMatch(r.stdout + r.stderr, /lost the claim/, `worker ${workers[i]?.pid} lost its claim`);
  }
});

test('the heartbeat thread has a connection of its own while the worker runs, and ends with the worker', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'quick', schema: z.object({}), handler: () => 'done' });
  const worker = new Worker(app, { logger: silentLogger(), claimIdle: '1s' });
  await worker.start();
  assert.equal(await heartbeatConnections(), 1, 'started: the thread is connected');
  assert.equal(await (await t.enqueue({})).result({ timeout: '10s' }), 'done');
  await worker.stop();
  await until(async () => (await heartbeatConnections()) === 0, 5000, 'the heartbeat connection to close');
});

test('ioredis options holding functions cannot reach a thread: one warning, claims renewed on the event loop', async () => {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const app = newApp(server(), { redisOptions: { reconnectOnError: () => false } });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const t = app.task({
    name: 'held',
    schema: z.object({}),
    handler: async () => {
      started();
      await gate;
      return 'done';
    },
  });
  // claimIdle 3 s (heartbeats every second on the event loop); b looks for idle tasks every 50 ms.
  // (1 s was too tight on a machine at load 15.)
  const claimIdle = 3000;
  const a = new Worker(app, { logger: pino({ level: 'info' }, sink), claimIdle, reclaimInterval: 50 });
  const b = new Worker(app, { logger: silentLogger(), claimIdle, reclaimInterval: 50 });
  await a.start();
  const h = await t.enqueue({});
  await running;
  await b.start();
  // The in-process heartbeat renews: after three claimIdle periods the task is still a's, never reclaimed.
  const since = Date.now();
  await until(() => Date.now() - since > 3 * claimIdle, 20_000, 'three claimIdle periods');
  const info = await h.info();
  assert.equal(info?.worker, a.name);
  assert.equal(info?.deliveries, 1);
  release();
  assert.equal(await h.result({ timeout: '10s' }), 'done');
  await Promise.all([a.stop(), b.stop()]);
  assert.equal(await heartbeatConnections(), 0, 'no thread was started');
  const warnings = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string })
    .filter((l) => l.msg.includes('not from a heartbeat thread'));
  assert.equal(warnings.length, 1, text);
  assert.equal(warnings[0]?.level, 40);
  assert.match(warnings[0]?.reason ?? '', /ioredis options cannot be passed to a thread/);
});
