import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker, type Progress, type Tasuki } from '../../src/index.js';
import { PROGRESS_INTERVAL_MS } from '../../src/progress/writer.js';
import { runCli } from '../support/cli.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

/** A started worker on `app`, stopped after the test. */
async function worker(app: Tasuki, t: { after: (fn: () => Promise<void>) => void }): Promise<Worker> {
  const w = new Worker(app, { concurrency: 4 });
  await w.start();
  t.after(() => w.stop());
  return w;
}

/** A promise with its resolve, to let a handler go on when the test says so. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

function progressKey(app: Tasuki, id: string): string {
  const [local, queue] = id.split('@') as [string, string];
  return app.keys.progress.key({ queue, task: local });
}

test('progress: throttled writes, the last value always written, followed live until the task ends', async (t) => {
  const app = newApp(server());
  const reported = gate();
  const finish = gate();
  const task = app.task({
    name: 'report',
    schema: z.object({}),
    handler: async (_args, ctx) => {
      for (let i = 1; i <= 50; i++) ctx.progress(i); // one write now, the rest coalesced into one
      reported.open();
      await finish.wait;
      ctx.progress({ done: 50, total: 50 }); // within the interval: written when the task ends
      return 'ok';
    },
  });
  await worker(app, t);
  const h = await task.enqueue({});
  const seen: Progress[] = [];
  let saw50!: () => void;
  const fifty = new Promise<void>((r) => (saw50 = r));
  const following = (async () => {
    for await (const p of h.followProgress({ blockMs: 200 })) {
      seen.push(p);
      if (p.value === 50) saw50();
    }
  })();
  await reported.wait;
  await fifty; // the trailing write of the coalesced reports, one interval after the first
  finish.open();
  assert.equal(await h.result({ timeout: '10s' }), 'ok');
  await following; // ends by itself once the task has finished
  assert.deepEqual(
    seen.map((p) => p.value),
    [1, 50, { done: 50, total: 50 }],
  );
  assert.ok(seen.every((p) => p.attempt === 1 && p.at > 0));
  assert.deepEqual((await h.progress())?.value, { done: 50, total: 50 });
  const redis = server().client();
  const key = progressKey(app, h.id);
  assert.equal(await redis.xlen(key), 3);
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 0 && ttl <= app.resultTtlMs, `ttl ${ttl}`);
  // Whoever follows after the end gets the kept reports and the end at once.
  const late: unknown[] = [];
  for await (const p of app.followProgress(h.id)) late.push(p.value);
  assert.deepEqual(late, [1, 50, { done: 50, total: 50 }]);
});

test('progress: at most one write per interval while a handler reports continuously', async (t) => {
  const app = newApp(server());
  const task = app.task({
    name: 'steady',
    schema: z.object({ ms: z.number() }),
    handler: async ({ ms }, ctx) => {
      const end = Date.now() + ms;
      for (let i = 0; Date.now() < end; i++) {
        ctx.progress(i);
        await new Promise((r) => setTimeout(r, 5));
      }
      ctx.progress('last');
    },
  });
  await worker(app, t);
  const ms = 6 * PROGRESS_INTERVAL_MS;
  const h = await task.enqueue({ ms });
  await h.result({ timeout: '10s' });
  const entries = await server().client().xlen(progressKey(app, h.id));
  // One per interval (plus the first at once and the last at the end), not one per report (~300).
  assert.ok(entries >= 3 && entries <= ms / PROGRESS_INTERVAL_MS + 3, `${entries} entries`);
  assert.equal((await app.getProgress(h.id))?.value, 'last');
});

test('progress: a task that never reports leaves no key and sends no progress command', async (t) => {
  const app = newApp(server());
  const task = app.task({ name: 'quiet', schema: z.object({}), handler: () => 1 });
  await worker(app, t);
  const redis = server().client();
  const pexpires = async (): Promise<number> => {
    const stats = await redis.info('commandstats');
    return Number(/cmdstat_pexpire:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };
  const before = await pexpires();
  const handles = await task.enqueueMany(Array.from({ length: 20 }, () => ({ args: {} })));
  for (const h of handles) await h.result({ timeout: '10s' });
  assert.equal(await pexpires(), before);
  assert.equal(await redis.exists(...handles.map((h) => progressKey(app, h.id))), 0);
  assert.equal(await handles[0]?.progress(), null);
});

test('progress: a value that is not JSON or over 1 KiB throws E_PROGRESS in the handler', async (t) => {
  const app = newApp(server());
  const task = app.task({
    name: 'bad-progress',
    schema: z.object({}),
    handler: (_args, ctx) => {
      const refused: string[] = [];
      for (const value of ['x'.repeat(2000), Number.NaN, undefined, 10n, { ok: true }]) {
        try {
          ctx.progress(value as number);
        } catch (err) {
          refused.push(`${(err as { code: string }).code}: ${(err as Error).message}`);
        }
      }
      return refused;
    },
  });
  await worker(app, t);
  const refused = await (await task.enqueue({})).result({ timeout: '10s' });
  assert.equal(refused.length, 4);
  assert.match(
    refused[0] as string,
    /^E_PROGRESS: .*2002 bytes of JSON, over the limit of 1024; report a number/,
  );
  assert.match(refused[1] as string, /^E_PROGRESS: .*must be finite/);
  assert.match(refused[2] as string, /^E_PROGRESS: .*undefined is not JSON/);
  assert.match(refused[3] as string, /^E_PROGRESS: .*not JSON \(.*BigInt/);
});

test('progress: each attempt reports under its number; following goes on across a retry', async (t) => {
  const app = newApp(server());
  const task = app.task({
    name: 'flaky',
    schema: z.object({}),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 50 },
    handler: (_args, ctx) => {
      ctx.progress(`attempt ${ctx.attempt}`);
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return 'done';
    },
  });
  const h = await task.enqueue({});
  const seen: string[] = [];
  const following = (async () => {
    for await (const p of h.followProgress({ blockMs: 200 })) seen.push(`${p.attempt}:${String(p.value)}`);
  })();
  await worker(app, t);
  assert.equal(await h.result({ timeout: '10s' }), 'done');
  await following;
  assert.deepEqual(seen, ['1:attempt 1', '2:attempt 2']);
});

test('progress: following stops when its signal aborts', async (t) => {
  const app = newApp(server());
  const release = gate();
  const task = app.task({
    name: 'long',
    schema: z.object({}),
    handler: async (_args, ctx) => {
      ctx.progress(1);
      await release.wait;
    },
  });
  await worker(app, t);
  const h = await task.enqueue({});
  const stop = new AbortController();
  const seen: unknown[] = [];
  for await (const p of h.followProgress({ signal: stop.signal })) {
    seen.push(p.value);
    stop.abort();
  }
  assert.deepEqual(seen, [1]);
  release.open();
  await h.result({ timeout: '10s' });
});

test('tasuki inspect task shows the latest progress', async (t) => {
  const app = newApp(server());
  const task = app.task({
    name: 'inspected',
    schema: z.object({}),
    handler: (_args, ctx) => ctx.progress({ done: 7, total: 9 }),
  });
  await worker(app, t);
  const h = await task.enqueue({});
  await h.result({ timeout: '10s' });
  const run = await runCli(['inspect', 'task', h.id, '--prefix', app.keys.space.prefix], {
    REDIS_URL: server().url,
  });
  assert.equal(run.code, 0, run.stderr);
  const info = JSON.parse(run.stdout) as { state: string; progress: Progress };
  assert.equal(info.state, 'succeeded');
  assert.deepEqual(info.progress.value, { done: 7, total: 9 });
  assert.equal(info.progress.attempt, 1);
});
