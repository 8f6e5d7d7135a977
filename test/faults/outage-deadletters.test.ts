// Fault 8.3 (dead letters): while Redis is down, `app.deadLetters.count/list/get` throw raw ioredis
// errors (MaxRetriesPerRequestError, no `code`).
//
// Expected: typed errors, as `getTask` and `queueStats` give: E_REDIS saying Redis is unreachable.
// Each dead-letter call wraps its Redis calls with errors.ts' `redisError`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TasukiError } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis({ appendonly: true });

function unreachable(err: unknown): boolean {
  assert.ok(err instanceof TasukiError, `not a TasukiError: ${String(err)}`);
  assert.equal(err.code, 'E_REDIS');
  assert.match(err.message, /Redis is unreachable/);
  return true;
}

test('dead-letter reads while Redis is down reject with E_REDIS', async () => {
  const app = newApp(server());
  const t = app.task({ name: 't', schema: z.object({}), handler: () => 1 });
  await t.enqueue({});
  assert.equal(await app.deadLetters.count('default'), 0); // connected
  await server().stop({ kill: true });
  try {
    await assert.rejects(app.deadLetters.count('default'), unreachable);
    await assert.rejects(app.deadLetters.list('default'), unreachable);
    await assert.rejects(app.deadLetters.get('default', '1-0@default'), unreachable);
  } finally {
    await server().server.start();
  }
});
