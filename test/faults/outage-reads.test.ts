// Faults 8.3 and 10.3: while Redis is down, reads leaked raw ioredis errors and wrong answers.
//
// - `result({ timeout: '40s' })` rejected after ~0.7 s with a raw ioredis error (no `code`); with
//   `timeout: '3s'` it took ~9 s, because the timer started only once Redis answered.
// - `getTask` threw raw ioredis errors.
// - `queueStats` answered all zeros for a queue holding a task (each failed command read as 0).
//
// Expected: `result()` waits through an outage within its own timeout, timed from the call, and
// resolves if the task finishes once Redis is back; when the timeout passes first it rejects with
// `TimeoutError` (E_TIMEOUT) saying Redis was unreachable. `getTask` and `queueStats` reject with
// E_REDIS (the app had a connection) or E_CONNECTION (it never got one). Only a missing consumer
// group (NOGROUP: no worker ever served the queue) reads as "0 active".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { tasuki, TasukiError, TimeoutError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { freePort } from '../../src/testing/index.js';
import { newApp, useRedis } from '../support/redis.js';
import { quiet } from './support.js';

const server = useRedis({ appendonly: true });

/** Stops Redis (SIGKILL) for the duration of `during`, then starts it again on the same port. */
async function outage(during: () => Promise<void>): Promise<void> {
  await server().stop({ kill: true });
  try {
    await during();
  } finally {
    await server().server.start();
  }
}

function typed(code: string, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TasukiError, `not a TasukiError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

test('result() called during a Redis outage waits, and resolves when the task finishes after Redis returns', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'double', schema: z.object({ n: z.number() }), handler: ({ n }) => n * 2 });
  const h = await t.enqueue({ n: 21 });
  const before = await t.enqueue({ n: 1 });
  let settled: string | undefined;
  const note = (p: Promise<unknown>): void =>
    void p.then(
      () => (settled = 'resolved'),
      (err: unknown) => (settled = `rejected: ${String(err)}`),
    );
  note(before.result({ timeout: '40s' })); // waiting since before the outage
  await quiet(100);
  let waiting!: Promise<unknown>;
  await outage(async () => {
    waiting = h.result({ timeout: '40s' }); // called while Redis is down
    note(waiting);
    await quiet(3000);
    assert.equal(settled, undefined, 'both still waiting after 3 s of outage');
  });
  const w = new Worker(app, { logger: silentLogger() });
  await w.start();
  assert.equal(await waiting, 42);
  assert.equal(await before.result({ timeout: '5s' }), 2);
  await w.stop();
});

test('result() with a timeout while Redis is down rejects at the timeout with TimeoutError, timed from the call', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'never', schema: z.object({}), handler: () => 1 });
  const h = await t.enqueue({});
  await h.result({ timeout: 50 }).catch(() => undefined); // connected and listening
  await outage(async () => {
    const started = Date.now();
    await assert.rejects(h.result({ timeout: '3s' }), (err: unknown) => {
      assert.ok(err instanceof TimeoutError, String(err));
      assert.equal(err.code, 'E_TIMEOUT');
      assert.match(err.message, new RegExp(`task ${h.id} did not finish within 3000 ms`));
      assert.match(err.message, /Redis was unreachable/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 2990 && took < 3500, `rejected after ${took} ms`);
  });
});

test('an app that never reached Redis: result() rejects at its timeout; getTask with E_CONNECTION', async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const app = tasuki({ redis: url, logger: silentLogger() });
  const started = Date.now();
  await assert.rejects(app.waitForResult('1-0@default', { timeout: '3s' }), (err: unknown) => {
    assert.ok(err instanceof TimeoutError, String(err));
    assert.match(err.message, /Redis was unreachable/);
    return true;
  });
  const took = Date.now() - started;
  assert.ok(took >= 2990 && took < 3500, `rejected after ${took} ms`);
  await assert.rejects(app.getTask('1-0@default'), typed('E_CONNECTION', /cannot reach Redis/));
  await app.close();
});

test('getTask and queueStats while Redis is down reject with E_REDIS, never raw errors or zeros', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'queued', schema: z.object({}), handler: () => 1 });
  const h = await t.enqueue({});
  assert.equal((await app.getTask(h.id))?.state, 'queued'); // connected
  await outage(async () => {
    await assert.rejects(app.getTask(h.id), typed('E_REDIS', /Redis is unreachable/));
    await assert.rejects(app.queueStats('default'), typed('E_REDIS', /Redis is unreachable/));
  });
  assert.deepEqual(await app.queueStats('default'), {
    queue: 'default',
    inStream: 1,
    active: 0,
    waiting: 1,
    delayed: 0,
    dead: 0,
    paused: false,
  });
});

test('queueStats: a missing consumer group reads as 0 active; any other failed command is an error', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'queued', schema: z.object({}), handler: () => 1 });
  await t.enqueue({});
  await t.enqueue({}, { delay: '1h' });
  // No worker ever served the queue: no consumer group.
  assert.deepEqual(await app.queueStats('default'), {
    queue: 'default',
    inStream: 1,
    active: 0,
    waiting: 1,
    delayed: 1,
    dead: 0,
    paused: false,
  });
  // A key of the wrong type (say, written by hand) must not read as "0 dead letters".
  await server()
    .client()
    .set(app.keys.dead.key({ queue: 'default' }), 'oops');
  await assert.rejects(app.queueStats('default'), typed('E_REDIS', /WRONGTYPE/));
});
