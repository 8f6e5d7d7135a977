import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { parseTaskId, TasukiError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('a worker whose entry another consumer XCLAIMed drops it: its handler is aborted and nothing is recorded', async () => {
  const app = newApp(server());
  const redis = server().client();
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let aborted!: (reason: unknown) => void;
  const abortedWith = new Promise<unknown>((r) => (aborted = r));
  const t = app.task({
    name: 'contested',
    schema: z.object({}),
    handler: async (_a, ctx) => {
      ctx.signal.addEventListener('abort', () => aborted(ctx.signal.reason));
      started();
      await abortedWith;
      // Returns normally after losing the claim: the worker must still not record this outcome.
      return 'finished on the losing worker';
    },
  });
  // claimIdle 1.5 s: heartbeats every 500 ms (which find the theft), and this worker's own reclaimer
  // never sees the entry idle, since the thief below renews its claim every 50 ms.
  const worker = new Worker(app, { logger: silentLogger(), claimIdle: '1500ms' });
  await worker.start();
  const h = await t.enqueue({});
  const entry = parseTaskId(h.id).local;
  const stream = app.keys.stream.key({ queue: 'default' });
  await running;
  assert.equal((await h.info())?.worker, worker.name);

  // Another consumer takes the entry over (as a reclaimer that thought the worker dead would), and
  // keeps its claim fresh like a live worker's heartbeat.
  const taken = await redis.xclaim(stream, 'tasuki', 'thief', 0, entry, 'JUSTID');
  assert.deepEqual(taken, [entry]);
  const renew = setInterval(() => {
    void redis.xclaim(stream, 'tasuki', 'thief', 0, entry, 'JUSTID').catch(() => undefined);
  }, 50);
  try {
    // The worker's next heartbeat finds the entry is no longer its own and aborts the handler.
    const reason = await abortedWith;
    assert.ok(reason instanceof TasukiError, String(reason));
    assert.equal(reason.code, 'E_LOST');
    // stop() waits for running handlers and records every outcome it still owns: after it, anything
    // the worker would have written is in Redis.
    await worker.stop();
  } finally {
    clearInterval(renew);
  }
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'active', 'no record: the outcome of the lost attempt was dropped');
  assert.equal(info?.worker, 'thief');
  assert.equal(await redis.exists(app.keys.result.key({ queue: 'default', task: entry })), 0);
  assert.equal(await redis.xlen(stream), 1, 'the entry is not deleted: the thief still holds it');
  const pending = (await redis.xpending(stream, 'tasuki', '-', '+', 10)) as [
    string,
    string,
    number,
    number,
  ][];
  assert.deepEqual(
    pending.map(([id, consumer]) => [id, consumer]),
    [[entry, 'thief']],
    'not acknowledged',
  );
  assert.equal(await redis.xlen(app.keys.events.key({ queue: 'default' })), 0, 'no completion announced');
  assert.equal(await app.deadLetters.count('default'), 0);
  assert.equal(worker.counts.succeeded + worker.counts.failed + worker.counts.retried, 0);
});
