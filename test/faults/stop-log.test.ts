// Fault 8.7 (stop log): after a stop that hands running tasks back once the grace time is over, the
// "worker stopped" line counts them as `abandoned`, although they were handed back (new stream
// entries that other workers run at once, no wait for claimIdle).
//
// Expected: `handedBack` counts every task the stop handed back, unstarted or running past the grace
// time; `abandoned` counts only the tasks left pending for a takeover after claimIdle (none here).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type TaskHandle } from '../../src/index.js';
import { newApp, until, useRedis } from '../support/redis.js';
import { capturingLogger, type LogLine } from './support.js';

const server = useRedis();

function stopLine(lines: LogLine[]): LogLine {
  const stopped = lines.filter((l) => l.msg === 'worker stopped');
  assert.equal(stopped.length, 1);
  return stopped[0] as LogLine;
}

async function states(handles: TaskHandle<unknown>[]): Promise<(string | undefined)[]> {
  return Promise.all(handles.map(async (h) => (await h.info())?.state));
}

// concurrency 2 + prefetch 3 fetch in batches of 3: two tasks run, one waits in the worker, two stay
// in the stream (the worker waits for a free slot before it fetches again).
const shape = { concurrency: 2, prefetch: 3 };

test('a stop that hands back the unstarted task and, after grace, the running ones says it handed back 3', async () => {
  const app = newApp(server());
  let started = 0;
  const t = app.task({
    name: 'stuck',
    schema: z.object({ i: z.number() }),
    handler: async () => {
      started++;
      await new Promise(() => undefined); // never ends, ignores ctx.signal
    },
  });
  const { logger, lines } = capturingLogger();
  const w = new Worker(app, { logger, ...shape, grace: 300 });
  await w.start();
  const handles = await t.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ args: { i } })));
  const held = async (): Promise<boolean> =>
    started === 2 && (await states(handles)).filter((s) => s === 'active').length === 3;
  await until(held, 5000, 'two tasks running and one more held');
  await w.stop();
  assert.deepEqual(await states(handles), ['queued', 'queued', 'queued', 'queued', 'queued']);
  const line = stopLine(lines);
  assert.deepEqual(
    { handedBack: line.handedBack, abandoned: line.abandoned },
    { handedBack: 3, abandoned: 0 },
  );
});

test('a stop within the grace time hands back only the unstarted task and says so', async () => {
  const app = newApp(server());
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started = 0;
  const t = app.task({
    name: 'gated',
    schema: z.object({ i: z.number() }),
    handler: async ({ i }) => {
      started++;
      await gate;
      return i;
    },
  });
  const { logger, lines } = capturingLogger();
  const w = new Worker(app, { logger, ...shape, grace: '10s' });
  await w.start();
  const handles = await t.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ args: { i } })));
  const held = async (): Promise<boolean> =>
    started === 2 && (await states(handles)).filter((s) => s === 'active').length === 3;
  await until(held, 5000, 'two tasks running and one more held');
  const stopping = w.stop();
  release();
  await stopping;
  assert.deepEqual(await states(handles), ['succeeded', 'succeeded', 'queued', 'queued', 'queued']);
  const line = stopLine(lines);
  assert.deepEqual(
    { handedBack: line.handedBack, abandoned: line.abandoned },
    { handedBack: 1, abandoned: 0 },
  );
});
