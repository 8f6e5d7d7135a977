// Fault 8.3 (noise): a producer printed 9-23 "[ioredis] Unhandled error event" lines per outage,
// because a connection made with duplicate() (the result waiter's blocking connection) had no error
// listener.
//
// Expected: a producer that enqueues and waits for results through a Redis outage prints nothing
// on stderr; every error it sees is a typed tasuki error (an enqueue during the outage that fails:
// E_REDIS; result waits still pending at close: E_CLOSED).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finished, waitForOutput } from '../support/cli.js';
import { randomPrefix, useRedis } from '../support/redis.js';
import { quiet } from './support.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const server = useRedis({ appendonly: true });
const PRODUCER = fileURLToPath(new URL('./fixtures/producer.ts', import.meta.url));

test('a producer through a Redis outage: nothing on stderr, only typed errors', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', PRODUCER], {
    env: { ...process.env, REDIS_URL: server().url, TEST_PREFIX: randomPrefix() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = finished(child, 60_000);
  await waitForOutput(child, /enqueued 5\n/, 30_000); // enqueueing and waiting for results
  await server().stop({ kill: true });
  await quiet(3000);
  await server().server.start();
  await waitForOutput(child, /enqueued \d+\n/, 30_000); // enqueueing again after the outage
  child.kill('SIGTERM');
  const run = await done;
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '', 'nothing on stderr');
  const summary = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as {
    enqueued: number;
    enqueueErrors: Record<string, number>;
    resultErrors: Record<string, number>;
  };
  // An enqueue during the outage either waits for the reconnect or fails typed (E_REDIS), by timing.
  assert.deepEqual(
    Object.keys(summary.enqueueErrors).filter((code) => code !== 'E_REDIS'),
    [],
    'enqueue errors are E_REDIS',
  );
  assert.deepEqual(Object.keys(summary.resultErrors), ['E_CLOSED'], 'waits pending at close: E_CLOSED');
});
