/**
 * Control in the broker conformance suite (./suite.ts calls it for each broker): revoke of a delayed,
 * a queued and a fetched task, revoke racing with workers that fetch, cancel of a running and of a
 * waiting task, purge (waiting and delayed, from the library and the CLI) and getTask of waiting
 * tasks — the same behaviour on Redis Streams and on RabbitMQ, counted in and out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { TaskFailedError, Worker, type Tasuki, type WorkerOptions } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { BrokerUnderTest } from '../support/brokers.js';
import { runCli } from '../support/cli.js';
import { randomPrefix, until } from '../support/redis.js';

const quiet = { logger: silentLogger(), promoteIntervalMs: 20 };

/** A promise and its resolve, for a handler the test lets go of. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
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

async function stateOf(app: Tasuki, id: string): Promise<string | undefined> {
  return (await app.getTask(id))?.state;
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

export function controlConformance(broker: BrokerUnderTest): void {
  const name = broker.kind;

  /** A worker on `app`, started; the caller stops it. */
  async function startWorker(app: Tasuki, options: WorkerOptions = {}): Promise<Worker> {
    const w = new Worker(app, { ...quiet, ...options });
    await w.start();
    return w;
  }

  /**
   * Resolves once the task's message has been taken off the broker and dropped: on RabbitMQ, where a
   * revoked message stays in its queue until a worker fetches it, its ticket is gone then.
   */
  async function dropped(app: Tasuki, id: string): Promise<void> {
    if (broker.kind !== 'rabbitmq') return;
    const [local, queue] = id.split('@') as [string, string];
    const key = app.keys.tickets.key({ queue });
    await until(
      async () => (await broker.redis().client().hexists(key, local)) === 0,
      20_000,
      `${id} dropped`,
    );
  }

  test(`${name}: getTask of waiting tasks: queued, delayed (with its due time), then succeeded`, async () => {
    const app = broker.app();
    const t = app.task({ name: 't', schema: z.object({}), handler: () => 'ran' });
    const queued = await t.enqueue({});
    const before = Date.now();
    const delayed = await t.enqueue({}, { delay: '2s' });
    assert.equal(await stateOf(app, queued.id), 'queued');
    const info = await app.getTask(delayed.id);
    assert.equal(info?.state, 'delayed');
    assert.ok(info?.dueAt !== undefined && info.dueAt >= before + 2000 && info.dueAt <= Date.now() + 2000);
    const stats = await app.queueStats('default');
    assert.equal(stats.waiting, 1);
    assert.equal(stats.delayed, 1);
    const w = await startWorker(app, { concurrency: 2 });
    try {
      assert.equal(await queued.result({ timeout: '20s' }), 'ran');
      assert.equal(await delayed.result({ timeout: '20s' }), 'ran');
      assert.equal(await stateOf(app, delayed.id), 'succeeded');
      assert.equal((await app.queueStats('default')).delayed, 0);
    } finally {
      await w.stop();
    }
  });

  test(`${name}: revoke: a delayed and a queued task never run; their records say revoked and result() rejects`, async () => {
    const app = broker.app();
    const ran: number[] = [];
    const t = app.task({
      name: 't',
      schema: z.object({ i: z.number() }),
      handler: ({ i }) => void ran.push(i),
    });
    // Due well after the revoke, however long a fresh producer takes to connect to its broker.
    const delayed = await t.enqueue({ i: 1 }, { delay: '4s' });
    const queued = await t.enqueue({ i: 2 });
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
    // Due after the revoked delayed one: by the time it has run, that one had its turn.
    const kept = await t.enqueue({ i: 3 }, { delay: '5s' });
    const w = await startWorker(app, { concurrency: 2 });
    try {
      await kept.result({ timeout: '20s' });
      await dropped(app, queued.id);
      await dropped(app, delayed.id);
      assert.deepEqual(ran, [3]);
      assert.equal(await stateOf(app, delayed.id), 'revoked');
      assert.equal(await stateOf(app, queued.id), 'revoked');
      // Revoking again, or a finished task, changes nothing; an id nobody enqueued is unknown.
      assert.deepEqual(await app.revoke(kept.id), { id: kept.id, outcome: 'finished', state: 'succeeded' });
      assert.equal((await app.revoke(queued.id)).outcome, 'finished');
      assert.equal((await app.revoke('1-0@default')).outcome, 'unknown');
      assert.equal((await app.queueStats('default')).waiting, 0);
    } finally {
      await w.stop();
    }
    assert.deepEqual(ran, [3]);
  });

  test(`${name}: revoke races a worker that already fetched the task: it is dropped before it starts and never runs`, async () => {
    const app = broker.app();
    const { t, started, release, blockerStarted } = blockerTask(app);
    // One slot: the blocker holds it; the victim is fetched with it (prefetch) and waits in the worker.
    const w = await startWorker(app, { concurrency: 1, prefetch: 4 });
    try {
      const blocker = await t.enqueue({ name: 'blocker' });
      await blockerStarted.opened;
      const victim = await t.enqueue({ name: 'victim' });
      await until(
        async () => (await stateOf(app, victim.id)) === 'active',
        10_000,
        'the victim to be fetched',
      );
      assert.equal(w.holding, 2);

      const r = await app.revoke(victim.id);
      assert.deepEqual(r, { id: victim.id, outcome: 'revoked', was: 'fetched', worker: w.name });
      await until(() => w.counts.revoked === 1, 10_000, 'the worker to drop the victim');
      release.open();
      assert.equal(await blocker.result({ timeout: '10s' }), 'blocker');
      await until(() => w.holding === 0);
      assert.equal(await stateOf(app, victim.id), 'revoked');
      assert.equal(await failureCode(victim.result({ timeout: '1s' })), 'E_REVOKED');
      assert.equal(w.counts.discarded, 0);
      // Nothing went back to the queue for another worker (RabbitMQ: the message was acked).
      assert.equal((await app.queueStats('default')).waiting, 0);
    } finally {
      await w.stop();
    }
    assert.deepEqual(started, ['blocker']);
  });

  test(`${name}: revoke under load: every task either ran once and succeeded, or is revoked (and never ran unless its worker had it)`, async () => {
    const app = broker.app();
    const N = 300;
    const runs = new Map<number, number>();
    const t = app.task({
      name: 't',
      schema: z.object({ i: z.number() }),
      handler: async ({ i }) => {
        runs.set(i, (runs.get(i) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 1 + (i % 3)));
        return i;
      },
    });
    const handles = await t.enqueueMany(Array.from({ length: N }, (_, i) => ({ args: { i } })));
    const workers = [
      new Worker(app, { ...quiet, concurrency: 4 }),
      new Worker(app, { ...quiet, concurrency: 4 }),
    ];
    await Promise.all(workers.map((w) => w.start()));
    try {
      // Revoke every other task while the workers run: some wait, some are fetched, some run, some are done.
      const results = await Promise.all(
        handles.filter((_, i) => i % 2 === 0).map((h) => app.revoke(h.id, { by: 'race' })),
      );
      const byIndex = new Map(results.map((r) => [handles.findIndex((h) => h.id === r.id), r]));
      // Every task settles: the revoked ones at once, the others when they ran.
      await Promise.all(handles.map((h) => h.result({ timeout: '60s' }).catch(() => undefined)));
      await until(
        async () => (await app.queueStats('default')).waiting === 0 && workers.every((w) => w.holding === 0),
        30_000,
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
        if (r.was !== 'fetched') assert.equal(runs.get(i), undefined, `task ${i} was ${r.was} and ran`);
        revoked++;
      }
      assert.equal(revoked + succeeded, N);
      assert.ok(revoked > 0);
      assert.equal(
        workers.reduce((n, w) => n + w.counts.succeeded, 0),
        succeeded,
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  test(`${name}: cancel: a running handler sees ctx.signal abort; the task ends cancelled, not retried, not dead-lettered`, async () => {
    const app = broker.app();
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
    const w = await startWorker(app, { concurrency: 2 });
    try {
      const h = await t.enqueue({ ignore: false });
      await started.opened;
      const r = await h.cancel({ by: 'ops:alice' });
      assert.deepEqual(r, { id: h.id, outcome: 'cancelling', was: 'running', worker: w.name });
      assert.equal(await failureCode(h.result({ timeout: '10s' })), 'E_CANCELLED');
      assert.equal((reason as { code?: string }).code, 'E_CANCELLED');
      const info = await app.getTask(h.id);
      assert.equal(info?.state, 'cancelled');
      assert.match(info?.error?.message ?? '', /ops:alice/);
      assert.equal(attempts, 1);

      // A handler that ignores the abort and returns: cancelled all the same.
      const h2 = await t.enqueue({ ignore: true });
      await until(() => attempts === 2, 10_000, 'the second task to start');
      assert.equal((await app.cancel(h2.id)).outcome, 'cancelling');
      assert.equal(await failureCode(h2.result({ timeout: '10s' })), 'E_CANCELLED');
      await until(() => w.holding === 0);
      assert.equal(w.counts.cancelled, 2);
      assert.equal(w.counts.succeeded, 0);
      const stats = await app.queueStats('default');
      assert.equal(stats.dead, 0);
      assert.equal(stats.delayed, 0);
      assert.equal(stats.waiting, 0);
    } finally {
      await w.stop();
    }
    assert.equal(attempts, 2, 'neither was retried');
  });

  test(`${name}: cancel of a task not running yet: queued, or fetched and waiting in the worker — recorded cancelled, never run`, async () => {
    const app = broker.app();
    const { t, started, release, blockerStarted } = blockerTask(app);
    const queued = await t.enqueue({ name: 'queued' });
    assert.deepEqual(await app.cancel(queued.id), { id: queued.id, outcome: 'cancelled', was: 'queued' });
    assert.equal(await stateOf(app, queued.id), 'cancelled');
    const w = await startWorker(app, { concurrency: 1, prefetch: 4 });
    try {
      const blocker = await t.enqueue({ name: 'blocker' });
      await blockerStarted.opened;
      const waiting = await t.enqueue({ name: 'waiting' });
      await until(async () => (await stateOf(app, waiting.id)) === 'active', 10_000, 'the fetch');
      assert.equal((await app.cancel(waiting.id)).outcome, 'cancelling');
      assert.equal(await failureCode(waiting.result({ timeout: '10s' })), 'E_CANCELLED');
      release.open();
      await blocker.result({ timeout: '10s' });
      await dropped(app, queued.id);
      assert.equal(await stateOf(app, queued.id), 'cancelled');
    } finally {
      await w.stop();
    }
    assert.deepEqual(started, ['blocker']);
  });

  test(`${name}: purge: waiting and delayed tasks go (counted) and never run; a task a worker runs finishes`, async () => {
    const app = broker.app();
    const release = gate();
    const started = gate();
    const ran: number[] = [];
    const t = app.task({
      name: 't',
      schema: z.object({ i: z.number() }),
      handler: async ({ i }) => {
        ran.push(i);
        if (i === -1) {
          started.open();
          await release.opened;
        }
        return i;
      },
    });
    const w = await startWorker(app, { concurrency: 1, prefetch: 0 });
    try {
      const held = await t.enqueue({ i: -1 });
      await started.opened;
      await app.pause('default'); // the worker takes none of what follows while we count
      await until(() => w.paused.includes('default'), 10_000, 'the worker to hear of the pause');
      const waiting = await t.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ args: { i } })));
      // Due soon: their messages come back from the delay while the purge is long done.
      const delayed = await Promise.all([100, 101, 102].map((i) => t.enqueue({ i }, { delay: '1500ms' })));
      const before = await app.queueStats('default');
      assert.equal(before.waiting, 40);
      assert.equal(before.delayed, 3);

      assert.deepEqual(await app.purge('default'), { queue: 'default', waiting: 40, delayed: 3 });
      const after = await app.queueStats('default');
      assert.equal(after.waiting, 0);
      assert.equal(after.delayed, 0);
      assert.equal(await app.getTask(waiting[0]!.id), null, 'a purged task is unknown');
      assert.equal(await app.getTask(delayed[0]!.id), null, 'a purged delayed task is unknown');
      assert.equal((await app.revoke(delayed[1]!.id)).outcome, 'unknown');

      await app.resume('default');
      release.open();
      assert.equal(await held.result({ timeout: '10s' }), -1);
      // Enqueued after the purge, due after the purged delayed ones: it runs, they do not.
      const later = await t.enqueue({ i: 7 }, { delay: '2500ms' });
      assert.equal(await later.result({ timeout: '20s' }), 7);
      await dropped(app, delayed[0]!.id);
      assert.deepEqual(ran, [-1, 7]);
      assert.deepEqual(await app.purge('default'), { queue: 'default', waiting: 0, delayed: 0 });
    } finally {
      await w.stop();
    }
  });

  test(`${name}: tasuki queue purge --yes --json purges the app's queue on its broker`, async () => {
    const prefix = randomPrefix();
    const app = broker.app({ prefix });
    const t = app.task({ name: 'count', schema: z.object({ i: z.number() }), handler: ({ i }) => i });
    const handles = await t.enqueueMany([1, 2, 3].map((i) => ({ args: { i } })));
    await t.enqueue({ i: 4 }, { delay: '1h' });
    await t.enqueue({ i: 5 }, { delay: '1h' });
    const env = { REDIS_URL: broker.redis().url, TEST_PREFIX: prefix, ...broker.env() };
    const run = await runCli(
      ['queue', 'purge', 'default', '--yes', '--json', '--app', 'test/fixtures/counting-app.ts'],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { queue: 'default', waiting: 3, delayed: 2 });
    assert.equal(await app.getTask(handles[0]!.id), null);
    assert.equal((await app.queueStats('default')).waiting, 0);
  });
}
