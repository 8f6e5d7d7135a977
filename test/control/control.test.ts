// Control (issue 14, point 2 and 3): revoke, cancel, pause/resume and purge with real workers on a
// real Redis — counted in and out, the races included (a revoke of a task a worker already fetched).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TaskFailedError, Worker, type Tasuki } from '../../src/index.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

/** A promise and its resolve, for a handler the test lets go of. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

/**
 * A task `t` that records the names it runs; the one named `blocker` holds its worker's slot until
 * `release` opens (`blockerStarted` opens when it starts).
 */
function blockerTask(app: Tasuki) {
  const started: string[] = [];
  const release = gate();
  const blockerStarted = gate();
  const t = app.task({
    name: 't',
    schema: z.object({ name: z.string() }),
    handler: async ({ name }) => {
      started.push(name);
      if (name === 'blocker') {
        blockerStarted.open();
        await release.opened;
      }
      return name;
    },
  });
  return { t, started, release, blockerStarted };
}

/** The code of a task's stored error, from `result()`'s rejection. */
async function failureCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TaskFailedError, String(err));
    return err.remote.code;
  }
  assert.fail('the result resolved; expected a rejection');
}

/** The state `lookup` gives for a task id. */
async function stateOf(app: Tasuki, id: string): Promise<string | undefined> {
  return (await app.getTask(id))?.state;
}

test('revoke: a delayed and a queued task never run; their records say revoked and result() rejects', async () => {
  const app = newApp(server());
  const ran: number[] = [];
  const t = app.task({
    name: 't',
    schema: z.object({ i: z.number() }),
    handler: ({ i }) => void ran.push(i),
  });
  const delayed = await t.enqueue({ i: 1 }, { delay: '50ms' });
  const queued = await t.enqueue({ i: 2 });
  const kept = await t.enqueue({ i: 3 });

  assert.deepEqual(await delayed.revoke({ by: 'test' }), {
    id: delayed.id,
    outcome: 'revoked',
    was: 'delayed',
  });
  assert.deepEqual(await app.revoke(queued.id), { id: queued.id, outcome: 'revoked', was: 'queued' });
  const info = await app.getTask(queued.id);
  assert.equal(info?.state, 'revoked');
  assert.equal(info?.error?.code, 'E_REVOKED');
  assert.equal(await failureCode(delayed.result({ timeout: '2s' })), 'E_REVOKED');

  const worker = new Worker(app, { concurrency: 2 });
  await worker.start();
  try {
    await kept.result({ timeout: '5s' });
    // The delayed one's due time passed long ago: promotion found nothing to move.
    await until(
      async () =>
        (await server()
          .client()
          .zcard(app.keys.delayed.key({ queue: 'default' }))) === 0,
    );
    assert.deepEqual(ran, [3]);
    assert.equal(await stateOf(app, delayed.id), 'revoked');
    // Revoking again, or a finished task, changes nothing.
    assert.deepEqual(await app.revoke(kept.id), { id: kept.id, outcome: 'finished', state: 'succeeded' });
    assert.equal((await app.revoke(queued.id)).outcome, 'finished');
    assert.equal((await app.revoke('1-0@default')).outcome, 'unknown');
  } finally {
    await worker.stop();
  }
  assert.equal(
    await server()
      .client()
      .xlen(app.keys.stream.key({ queue: 'default' })),
    0,
  );
});

test('revoke races a worker that already fetched the task: it is dropped before it starts and never runs', async () => {
  const app = newApp(server());
  const { t, started, release, blockerStarted } = blockerTask(app);
  // One slot: the blocker holds it; the victim is fetched with it (prefetch) and waits in the worker.
  const worker = new Worker(app, { concurrency: 1, prefetch: 4 });
  await worker.start();
  try {
    const blocker = await t.enqueue({ name: 'blocker' });
    await blockerStarted.opened;
    const victim = await t.enqueue({ name: 'victim' });
    await until(async () => (await stateOf(app, victim.id)) === 'active', 5000, 'the victim to be fetched');
    assert.equal(worker.holding, 2);

    const r = await app.revoke(victim.id);
    assert.equal(r.outcome, 'revoked');
    assert.equal(r.was, 'fetched');
    assert.equal(r.worker, worker.name);
    await until(() => worker.counts.revoked === 1, 5000, 'the worker to drop the victim');
    release.open();
    assert.equal(await blocker.result({ timeout: '5s' }), 'blocker');
    await until(() => worker.holding === 0);
    assert.deepEqual(started, ['blocker']);
    assert.equal(await stateOf(app, victim.id), 'revoked');
    assert.equal(await failureCode(victim.result({ timeout: '1s' })), 'E_REVOKED');
    assert.deepEqual(worker.counts.discarded, 0);
  } finally {
    await worker.stop();
  }
});

test('revoke under load: every task either ran once and succeeded, or never ran (or was stopped) and is revoked', async () => {
  const app = newApp(server());
  const N = 300;
  const runs = new Map<number, number>();
  const finishedRuns = new Set<number>();
  // Tasks from 100 on hold until the revokes are answered, so however fast the workers drain (or
  // slow the revokes come, on a loaded machine) some are still waiting, fetched or running then.
  const revokesSent = gate();
  const t = app.task({
    name: 't',
    schema: z.object({ i: z.number() }),
    handler: async ({ i }, ctx) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      if (i >= 100) await revokesSent.opened;
      await new Promise((r) => setTimeout(r, 1 + (i % 3)));
      if (!ctx.signal.aborted) finishedRuns.add(i);
      return i;
    },
  });
  const handles = await t.enqueueMany(Array.from({ length: N }, (_, i) => ({ args: { i } })));
  const workers = [new Worker(app, { concurrency: 4 }), new Worker(app, { concurrency: 4 })];
  await Promise.all(workers.map((w) => w.start()));
  try {
    // Revoke every other task while the workers run: some wait, some are fetched, some run, some are done.
    const results = await Promise.all(
      handles.filter((_, i) => i % 2 === 0).map((h) => app.revoke(h.id, { by: 'race' })),
    );
    revokesSent.open();
    const byIndex = new Map(results.map((r) => [handles.findIndex((h) => h.id === r.id), r]));
    await until(
      async () => {
        const s = await app.queueStats('default');
        return s.inStream === 0 && s.delayed === 0 && workers.every((w) => w.holding === 0);
      },
      20_000,
      'the queue to drain',
    );
    let revoked = 0;
    let succeeded = 0;
    for (let i = 0; i < N; i++) {
      const info = await app.getTask(handles[i]!.id);
      const r = byIndex.get(i);
      assert.ok((runs.get(i) ?? 0) <= 1, `task ${i} ran ${runs.get(i)} times`);
      if (r === undefined || r.outcome === 'finished') {
        assert.equal(info?.state, 'succeeded', `task ${i}`);
        assert.equal(runs.get(i), 1);
        succeeded++;
        continue;
      }
      assert.equal(r.outcome, 'revoked', `task ${i}: ${JSON.stringify(r)}`);
      assert.equal(info?.state, 'revoked', `task ${i}`);
      // Waiting when revoked: never ran. Fetched: never ran, or (started in the moment before its
      // worker heard) stopped — its outcome was not recorded either way.
      if (r.was !== 'fetched') assert.equal(runs.get(i), undefined, `task ${i} was ${r.was} and ran`);
      revoked++;
    }
    assert.equal(revoked + succeeded, N);
    assert.ok(revoked > 0);
    const counted = workers.reduce((n, w) => n + w.counts.succeeded, 0);
    assert.equal(counted, succeeded);
  } finally {
    revokesSent.open();
    await Promise.all(workers.map((w) => w.stop()));
  }
});

test('cancel: a running handler sees ctx.signal abort; the task ends cancelled, not retried, not dead-lettered', async () => {
  const app = newApp(server());
  const started = gate();
  let attempts = 0;
  let reason: unknown;
  const t = app.task({
    name: 't',
    schema: z.object({ ignore: z.boolean() }),
    maxAttempts: 3,
    handler: async ({ ignore }, ctx) => {
      attempts++;
      started.open();
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      reason = ctx.signal.reason;
      if (ignore) return 'done anyway';
      throw ctx.signal.reason;
    },
  });
  const worker = new Worker(app, { concurrency: 2 });
  await worker.start();
  try {
    const h = await t.enqueue({ ignore: false });
    await started.opened;
    const r = await h.cancel({ by: 'ops:alice' });
    assert.deepEqual(r, { id: h.id, outcome: 'cancelling', was: 'running', worker: worker.name });
    assert.equal(await failureCode(h.result({ timeout: '5s' })), 'E_CANCELLED');
    assert.equal((reason as { code?: string }).code, 'E_CANCELLED');
    const info = await app.getTask(h.id);
    assert.equal(info?.state, 'cancelled');
    assert.match(info?.error?.message ?? '', /ops:alice/);
    assert.equal(attempts, 1);
    assert.equal((await app.queueStats('default')).dead, 0);
    assert.equal((await app.queueStats('default')).delayed, 0);

    // A handler that ignores the abort and returns: cancelled all the same.
    const h2 = await t.enqueue({ ignore: true });
    await until(async () => (await stateOf(app, h2.id)) === 'active');
    await until(() => attempts === 2);
    assert.equal((await app.cancel(h2.id)).outcome, 'cancelling');
    assert.equal(await failureCode(h2.result({ timeout: '5s' })), 'E_CANCELLED');
    assert.equal(worker.counts.cancelled, 2);
    assert.equal(worker.counts.succeeded, 0);
  } finally {
    await worker.stop();
  }
});

test('cancel of a task not running yet: queued, or fetched and waiting in the worker — recorded cancelled, never run', async () => {
  const app = newApp(server());
  const { t, started, release, blockerStarted } = blockerTask(app);
  const queued = await t.enqueue({ name: 'queued' });
  assert.deepEqual(await app.cancel(queued.id), { id: queued.id, outcome: 'cancelled', was: 'queued' });
  assert.equal(await stateOf(app, queued.id), 'cancelled');

  const worker = new Worker(app, { concurrency: 1, prefetch: 4 });
  await worker.start();
  try {
    const blocker = await t.enqueue({ name: 'blocker' });
    await blockerStarted.opened;
    const waiting = await t.enqueue({ name: 'waiting' });
    await until(async () => (await stateOf(app, waiting.id)) === 'active');
    assert.equal((await app.cancel(waiting.id)).outcome, 'cancelling');
    assert.equal(await failureCode(waiting.result({ timeout: '5s' })), 'E_CANCELLED');
    release.open();
    await blocker.result({ timeout: '5s' });
    assert.deepEqual(started, ['blocker']);
  } finally {
    await worker.stop();
  }
});

test('pause: workers take no new task from a paused queue, running ones finish, fetched ones go back; resume runs them', async () => {
  const app = newApp(server(), { queues: ['default', 'other'] });
  const { t, started, release, blockerStarted } = blockerTask(app);
  const o = app.task({ name: 'o', queue: 'other', schema: z.object({}), handler: () => 'other' });
  const worker = new Worker(app, { concurrency: 1, prefetch: 4 });
  await worker.start();
  try {
    const blocker = await t.enqueue({ name: 'blocker' });
    await blockerStarted.opened;
    const fetched = await t.enqueue({ name: 'fetched' });
    await until(async () => (await stateOf(app, fetched.id)) === 'active');

    assert.equal(await app.pause('default', { by: 'test' }), true);
    assert.equal(await app.pause('default'), false); // already paused
    assert.equal((await app.pausedInfo('default'))?.by, 'test');
    await until(() => worker.paused.includes('default'), 5000, 'the worker to hear of the pause');
    // The fetched one went back to the queue, unstarted.
    await until(async () => (await stateOf(app, fetched.id)) === 'queued', 5000, 'the hand-back');
    const later = await t.enqueue({ name: 'later' });
    release.open();
    assert.equal(await blocker.result({ timeout: '5s' }), 'blocker'); // the running one finished
    // The worker goes on serving its other queue meanwhile.
    assert.equal(await (await o.enqueue({})).result({ timeout: '5s' }), 'other');
    assert.equal(await (await o.enqueue({})).result({ timeout: '5s' }), 'other');
    const stats = await app.queueStats('default');
    assert.equal(stats.waiting, 2);
    assert.equal(stats.paused, true);
    assert.deepEqual(started, ['blocker']);

    assert.equal(await app.resume('default'), true);
    assert.equal(await app.resume('default'), false);
    assert.equal(await fetched.result({ timeout: '5s' }), 'fetched');
    assert.equal(await later.result({ timeout: '5s' }), 'later');
    assert.equal((await app.queueStats('default')).paused, false);
    assert.equal(await app.pausedInfo('default'), null);
  } finally {
    await worker.stop();
  }
});

test('a worker that starts while its queue is paused takes nothing from it', async () => {
  const app = newApp(server());
  const t = app.task({ name: 't', schema: z.object({}), handler: () => 'ran' });
  await app.pause('default');
  const h = await t.enqueue({});
  const worker = new Worker(app, { concurrency: 2 });
  await worker.start();
  try {
    assert.deepEqual(worker.paused, ['default']);
    assert.equal(await stateOf(app, h.id), 'queued');
    await app.resume('default');
    assert.equal(await h.result({ timeout: '5s' }), 'ran');
  } finally {
    await worker.stop();
  }
});

test('purge: deletes waiting and delayed tasks in batches and counts them; tasks a worker holds run on', async () => {
  const app = newApp(server());
  const release = gate();
  const started = gate();
  const ran: number[] = [];
  const t = app.task({
    name: 't',
    schema: z.object({ i: z.number() }),
    handler: async ({ i }) => {
      ran.push(i);
      started.open();
      await release.opened;
      return i;
    },
  });
  const worker = new Worker(app, { concurrency: 1, prefetch: 0 });
  await worker.start();
  try {
    const held = await t.enqueue({ i: -1 });
    await started.opened;
    await t.enqueueMany(Array.from({ length: 1203 }, (_, i) => ({ args: { i } })));
    for (let i = 0; i < 5; i++) await t.enqueue({ i: 10_000 + i }, { delay: '1h' });
    await app.pause('default'); // so the worker takes none of them while we count
    const before = await app.queueStats('default');
    assert.equal(before.delayed, 5);
    assert.ok(before.waiting >= 1202, JSON.stringify(before));

    const purged = await app.purge('default');
    assert.equal(purged.delayed, 5);
    assert.equal(purged.waiting, before.waiting);
    const after = await app.queueStats('default');
    assert.equal(after.waiting, 0);
    assert.equal(after.delayed, 0);
    assert.equal(after.active, 1);
    assert.equal(
      await server()
        .client()
        .hlen(app.keys.parked.key({ queue: 'default' })),
      0,
    );

    release.open();
    assert.equal(await held.result({ timeout: '5s' }), -1);
    assert.deepEqual(await app.purge('default'), { queue: 'default', waiting: 0, delayed: 0 });
  } finally {
    await worker.stop();
  }
});
