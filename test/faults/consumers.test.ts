// Fault 8.7 (consumers): dead consumers are never removed from the consumer group.
//
// Every worker joins the group "tasuki" under a new consumer name (host:pid:random), and nothing ever
// removes a consumer: after a year of deploys and autoscaling a queue's group lists thousands of dead
// consumers (XINFO CONSUMERS, memory, slower XPENDING scans).
//
// Expected: a worker that stops cleanly and holds nothing removes its own consumer; a consumer that
// holds nothing and has been idle longer than claimIdle (its worker died) is removed by a live
// worker. A consumer that still holds tasks is never removed (its entries would be lost): its tasks
// are taken over first, and then it is removed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { newApp, until, useRedis } from '../support/redis.js';
import { capturingLogger } from './support.js';

const server = useRedis();

async function consumers(stream: string): Promise<string[]> {
  const reply = (await server().client().xinfo('CONSUMERS', stream, 'tasuki')) as unknown[][];
  return reply.map((fields) => String(fields[fields.indexOf('name') + 1])).sort();
}

test('workers that stop cleanly leave no consumer behind', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'noop', schema: z.object({ i: z.number() }), handler: ({ i }) => i });
  const stream = app.keys.stream.key({ queue: 'default' });
  for (let round = 0; round < 5; round++) {
    const w = new Worker(app, { logger: capturingLogger().logger });
    await w.start();
    assert.equal(await (await t.enqueue({ i: round })).result({ timeout: '5s' }), round);
    assert.deepEqual(await consumers(stream), [w.name], 'a running worker is the only consumer');
    await w.stop();
  }
  assert.deepEqual(await consumers(stream), [], 'five workers started and stopped: no consumer left');
});

test('consumers of dead workers are removed once they hold nothing; their tasks are run first', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'echo', schema: z.object({ i: z.number() }), handler: ({ i }) => i });
  const stream = app.keys.stream.key({ queue: 'default' });
  const redis = server().client();
  await redis.xgroup('CREATE', stream, 'tasuki', '0', 'MKSTREAM');
  // Two workers that died: one holding a task, one holding nothing.
  const held = await t.enqueue({ i: 7 });
  await redis.xreadgroup('GROUP', 'tasuki', 'dead-holding', 'COUNT', 1, 'STREAMS', stream, '>');
  // XREADGROUP with nothing to read does not make a consumer on Redis 7.0: make it directly.
  await redis.xgroup('CREATECONSUMER', stream, 'tasuki', 'dead-empty');
  assert.deepEqual(await consumers(stream), ['dead-empty', 'dead-holding']);

  const w = new Worker(app, { logger: capturingLogger().logger, claimIdle: 300, reclaimInterval: 50 });
  await w.start();
  assert.equal(await held.result({ timeout: '5s' }), 7, 'the dead holder’s task is taken over and run');
  await until(async () => (await consumers(stream)).join() === w.name, 5000, 'dead consumers to go').catch(
    () => undefined,
  );
  assert.deepEqual(await consumers(stream), [w.name], 'the group lists only the live worker');
  await w.stop();
});
