import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { MESSAGE_FIELD, MESSAGE_VERSION } from '../../src/wire/fields.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

test('a message in a newer format is left for a newer worker, then dead-lettered after releaseFor', async () => {
  const app = newApp(server());
  const stream = app.keys.stream.key({ queue: 'default' });
  const redis = server().client();
  const newer = `m${MESSAGE_VERSION + 1}`;
  const worker = new Worker(app, {
    logger: silentLogger(),
    claimIdle: '200ms',
    reclaimInterval: '50ms',
    releaseFor: '1s',
  });
  await worker.start();
  const entry = (await redis.xadd(stream, '*', newer, '{"some":"future format"}')) as string;

  try {
    // Each delivery is left unacknowledged; the reclaimer hands it out again until the bound.
    await until(async () => (await app.deadLetters.count('default')) === 1, 20_000, 'the dead letter');
  } finally {
    await worker.stop();
  }
  const letter = await app.deadLetters.get('default', `${entry}@default`);
  assert.equal(letter?.reason, 'newer-format');
  assert.match(
    letter?.error.message ?? '',
    new RegExp(`format ${MESSAGE_VERSION + 1} is newer than this worker knows`),
  );
  assert.ok(worker.counts.released >= 1, 'left for another worker until it had waited releaseFor');
  const waited = Date.now() - Number(entry.split('-')[0]);
  assert.ok(waited >= 1000, `dead-lettered after ${waited} ms, not before releaseFor`);
  assert.equal(worker.counts.failed, 1);
  assert.equal(await redis.xlen(stream), 0, 'the entry is gone from the stream once dead-lettered');
});

test('an unknown task is left for another worker by default: a worker that knows it runs it', async () => {
  const old = newApp(server());
  const prefix = old.keys.space.prefix;
  const fresh = newApp(server(), { prefix });
  // Both workers reclaim the entry in turn, each round a fresh draw, until the new one wins.
  const oldWorker = new Worker(old, {
    logger: silentLogger(),
    claimIdle: '300ms',
    reclaimInterval: '50ms',
    maxDeliveries: 30,
  });
  await oldWorker.start();
  // Only the old worker runs while the task is enqueued: it does not know the task.
  const producer = fresh.task({
    name: 'brand.new',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => n * 2,
  });
  const handle = await producer.enqueue({ n: 21 });
  await until(() => oldWorker.counts.released >= 1, 10_000, 'the old worker to leave it');
  assert.equal((await handle.info())?.state, 'active', 'still pending, not dead-lettered');
  const newWorker = new Worker(fresh, {
    logger: silentLogger(),
    claimIdle: '300ms',
    reclaimInterval: '50ms',
    maxDeliveries: 30,
  });
  await newWorker.start();
  try {
    assert.equal(await handle.result({ timeout: '20s' }), 42);
  } finally {
    await Promise.all([oldWorker.stop(), newWorker.stop()]);
  }
  assert.equal(await old.deadLetters.count('default'), 0);
  assert.equal(oldWorker.counts.succeeded + newWorker.counts.succeeded, 1);
});

test('a message field name carries its version; this version writes the field the Lua scripts write', () => {
  assert.equal(MESSAGE_VERSION, 2);
  assert.equal(MESSAGE_FIELD, 'm');
});

test('a task handle prints its id, queue, task and created flag, not the app behind it', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'shown', schema: z.object({}), handler: () => 1 });
  const handle = await t.enqueue({});
  const text = inspect(handle);
  assert.equal(text, `TaskHandle { id: '${handle.id}', queue: 'default', task: 'shown', created: true }`);
  assert.deepEqual(JSON.parse(JSON.stringify(handle)), {
    id: handle.id,
    queue: 'default',
    task: 'shown',
    created: true,
  });
});
