import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { newApp, useRedis } from '../support/redis.js';

// Dead letters are trimmed with XADD MAXLEN ~ and XTRIM MINID ~: approximate, whole stream nodes at
// a time. With one entry per node (this file's own server) approximate trimming is exact, so the
// bounds tasuki asks for can be checked to the entry.
const server = useRedis({ args: ['--stream-node-max-entries', '1'] });

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A task that always fails on its first and only attempt, and a worker running one at a time. */
async function failing(app: Tasuki): Promise<{
  fail: (n: number) => Promise<string>;
  worker: Worker;
}> {
  const t = app.task({
    name: 'doomed',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => {
      throw new Error(`doomed ${n}`);
    },
  });
  const worker = new Worker(app, { logger: silentLogger(), concurrency: 1 });
  await worker.start();
  return {
    worker,
    fail: async (n) => {
      const h = await t.enqueue({ n });
      await assert.rejects(h.result({ timeout: '30s' }), new RegExp(`doomed ${n}`));
      return h.id;
    },
  };
}

/** Appends a dead letter with a given stream id (time), as a worker would have long ago. */
async function seed(app: Tasuki, ms: number, label: string): Promise<string> {
  const letter = {
    id: `${ms}-0`,
    queue: 'default',
    task: 'doomed',
    reason: 'max-attempts',
    error: { name: 'Error', message: label },
    attempts: 1,
    failedAt: ms,
    message: '["doomed",{"n":0}]',
  };
  return (await server()
    .client()
    .xadd(app.keys.dead.key({ queue: 'default' }), `${ms}-0`, 'd', JSON.stringify(letter))) as string;
}

test('deadLetterMaxLen: a queue keeps only its newest dead letters', async () => {
  const app = newApp(server(), { deadLetterMaxLen: 5 });
  const { fail, worker } = await failing(app);
  const ids: string[] = [];
  for (let n = 0; n < 12; n++) ids.push(await fail(n));
  await worker.stop();
  assert.equal(await app.deadLetters.count('default'), 5);
  const kept = await app.deadLetters.list('default');
  assert.deepEqual(
    kept.map((d) => d.taskId),
    ids.slice(-5),
    'the oldest went first',
  );
  // The records of trimmed dead letters stay (they have their own TTL): only the dead letter goes.
  assert.equal((await app.getTask(ids[0] as string))?.state, 'failed');
});

test('deadLetterRetention: dead letters older than it are trimmed when a new one is added', async () => {
  const app = newApp(server(), { deadLetterRetention: '1h' });
  const now = Date.now();
  await seed(app, now - 2 * HOUR, 'two hours old');
  await seed(app, now - 90 * 60_000, 'ninety minutes old');
  const recent = await seed(app, now - 30 * 60_000, 'half an hour old');
  assert.equal(await app.deadLetters.count('default'), 3);
  const { fail, worker } = await failing(app);
  const id = await fail(1);
  await worker.stop();
  const kept = await app.deadLetters.list('default');
  assert.deepEqual(
    kept.map((d) => d.deadId),
    [recent, kept[1]?.deadId],
  );
  assert.equal(kept[1]?.taskId, id);
  assert.deepEqual(
    kept.map((d) => d.error.message),
    ['half an hour old', 'doomed 1'],
  );
});

test('deadLetterRetention defaults to 7 days', async () => {
  const app = newApp(server());
  assert.equal(app.deadLetterRetentionMs, 7 * DAY);
  const now = Date.now();
  await seed(app, now - 8 * DAY, 'eight days old');
  const six = await seed(app, now - 6 * DAY, 'six days old');
  const { fail, worker } = await failing(app);
  const id = await fail(1);
  await worker.stop();
  const kept = await app.deadLetters.list('default');
  assert.deepEqual(
    kept.map((d) => d.deadId),
    [six, kept[1]?.deadId],
  );
  assert.equal(kept[1]?.taskId, id);
});

test('app options: deadLetterMaxLen and deadLetterRetention are checked', () => {
  assert.throws(() => newApp(server(), { deadLetterMaxLen: 0 }), /deadLetterMaxLen/);
  assert.throws(() => newApp(server(), { deadLetterMaxLen: 2.5 }), /deadLetterMaxLen/);
  assert.throws(() => newApp(server(), { deadLetterRetention: 'forever' as never }), /deadLetterRetention/);
  assert.throws(() => newApp(server(), { deadLetterRetention: 0 }), /deadLetterRetention/);
  assert.equal(newApp(server()).deadLetterMaxLen, 10_000);
});
