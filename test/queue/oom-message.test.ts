// When Redis discards a MULTI (EXECABORT), the E_MEMORY_FULL error is built from the queued command's own
// error (ioredis' `previousErrors`), so it names OOM and gives the maxmemory hint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TasukiError } from '../../src/index.js';
import { TestRedis } from '../../src/testing/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('a bulk enqueue in one MULTI refused at maxmemory says OOM and what to do', async () => {
  const own: TestRedis = server();
  const app = newApp(own, { memoryGuard: false });
  const t = app.task({ name: 'full', schema: z.object({ n: z.number() }), handler: () => 1 });
  const admin = own.client();
  await app.redis();
  await admin.config('SET', 'maxmemory', '1');
  try {
    await assert.rejects(
      t.enqueueMany([
        { args: { n: 1 } },
        { args: { n: 2 }, options: { delay: '1h' } },
        { args: { n: 3 }, options: { idempotencyKey: 'k' } },
      ]),
      (err: unknown) => {
        assert.ok(err instanceof TasukiError);
        assert.equal(err.code, 'E_MEMORY_FULL');
        assert.match(err.message, /OOM.*nothing was written.*maxmemory/);
        return true;
      },
    );
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  assert.deepEqual(await admin.keys('*'), []);
});
