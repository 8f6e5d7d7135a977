// Fault 10.2: `app.close()` left pending `result()` waits pending forever (its doc says they
// reject); after close, `enqueue` silently reconnected while `result()` threw E_CONFIG.
//
// Expected: one rule. `close()` rejects every pending wait with E_CLOSED at once, and after close
// every call that needs Redis (enqueue, result, getTask, queueStats, redis()) rejects with E_CLOSED
// and opens no connection. close() may be called again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TasukiError } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

function closed(err: unknown): boolean {
  assert.ok(err instanceof TasukiError, String(err));
  assert.equal(err.code, 'E_CLOSED');
  assert.match(err.message, /the app is closed/);
  return true;
}

async function connections(): Promise<number> {
  return String(await server().client().client('LIST'))
    .split('\n')
    .filter((l) => /name=tasuki/.test(l)).length;
}

test('close() rejects pending result() waits with E_CLOSED at once', { timeout: 10_000 }, async () => {
  const app = newApp(server());
  const t = app.task({ name: 'never', schema: z.object({}), handler: () => 1 });
  const h = await t.enqueue({});
  const forever = assert.rejects(h.result(), closed);
  const bounded = assert.rejects(h.result({ timeout: '1h' }), closed);
  await new Promise((r) => setTimeout(r, 100)); // both are waiting on the completion stream
  const started = Date.now();
  await app.close();
  await Promise.all([forever, bounded]);
  assert.ok(Date.now() - started < 500);
});

test(
  'after close() every call rejects with E_CLOSED and no connection is opened',
  { timeout: 10_000 },
  async () => {
    const app = newApp(server());
    const t = app.task({ name: 'later', schema: z.object({}), handler: () => 1 });
    const h = await t.enqueue({});
    await app.close();
    await app.close(); // again: fine
    const before = await connections();
    await assert.rejects(t.enqueue({}), closed);
    await assert.rejects(t.enqueueMany([{ args: {} }]), closed);
    await assert.rejects(h.result({ timeout: '1s' }), closed);
    await assert.rejects(app.waitForResult(h.id), closed);
    await assert.rejects(app.getTask(h.id), closed);
    await assert.rejects(app.queueStats('default'), closed);
    await assert.rejects(app.redis(), closed);
    assert.equal(await connections(), before, 'no connection opened after close');
  },
);
