// Scripts inside a MULTI are sent as EVAL, not EVALSHA: a NOSCRIPT inside a transaction cannot fall
// back, and the MULTI would write part of a bulk enqueue while saying nothing was written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import type { EnqueueOptions } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('a mixed enqueueMany after the script cache was emptied writes all items, or none and says so', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'mixed', schema: z.object({ n: z.number() }), handler: () => 1 });
  const admin = server().client();
  // The connection has used enqueue_bulk and schedule: ioredis now sends them as EVALSHA.
  await t.enqueueMany([{ args: { n: 0 } }, { args: { n: 0 }, options: { delay: '1h' } }]);
  await admin.flushall();
  await admin.script('FLUSH');
  const items: { args: { n: number }; options?: EnqueueOptions }[] = [
    { args: { n: 1 } },
    { args: { n: 2 }, options: { delay: '1h' } },
    { args: { n: 3 }, options: { idempotencyKey: 'k' } },
  ];
  let written = false;
  try {
    const handles = await t.enqueueMany(items);
    written = true;
    assert.equal(handles.length, 3);
  } catch (err) {
    assert.match((err as Error).message, /nothing was written/);
    assert.deepEqual(await admin.keys('*'), [], 'it said nothing was written');
  }
  if (written) {
    assert.equal(await admin.xlen(app.keys.stream.key({ queue: 'default' })), 2);
    assert.equal(await admin.zcard(app.keys.delayed.key({ queue: 'default' })), 1);
  }
  // And the next call works: a flushed script cache is not a permanent failure.
  const again = await t.enqueueMany([
    { args: { n: 4 } },
    { args: { n: 5 }, options: { delay: '1h' } },
    { args: { n: 6 }, options: { idempotencyKey: 'k2' } },
  ]);
  assert.equal(again.length, 3);
});
