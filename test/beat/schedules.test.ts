/**
 * Beat in one process, driven round by round with a clock the test sets: definition errors, DST,
 * misfire policies, run-time changes, remove-then-add, reconciliation, and the tick script's guards.
 * Enqueued ticks are counted in the queue's stream on a real Redis.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  Beat,
  LEASE_NAME,
  OptionsError,
  TaskArgsError,
  TasukiError,
  Worker,
  type Tasuki,
} from '../../src/index.js';
import { beatTick, fenceSet, run } from '../../src/scripts/catalogue.js';
import { decide } from '../../src/beat/timing.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

function appWithTask(): { app: Tasuki; report: ReturnType<typeof define> } {
  const app = newApp(server(), { queues: ['default', 'low'] });
  return { app, report: define(app) };
}

function define(app: Tasuki) {
  return app.task({
    name: 'report',
    schema: z.object({ day: z.string() }),
    handler: ({ day }) => day,
  });
}

/** A beat whose "now" is `clock.t`, so a test drives it through any night it likes. */
function drivenBeat(app: Tasuki, clock: { t: number }): Beat {
  return new Beat(app, { lease: '5s', id: 'driven' }, { now: () => Promise.resolve(clock.t) });
}

/** The tasks in a queue's stream: their names and arguments. */
async function enqueued(app: Tasuki, queue = 'default'): Promise<unknown[]> {
  const redis = await app.redis();
  const entries = await redis.xrange(app.keys.stream.key({ queue }), '-', '+');
  return entries.map(([, fields]) => JSON.parse(fields[1] as string) as unknown);
}

test('a bad schedule is refused when it is defined, naming what is wrong', () => {
  const { app, report } = appWithTask();
  const ok = { name: 'r', task: report, args: { day: 'today' } };
  assert.throws(
    () => app.schedule({ ...ok, cron: '61 * * * *' }),
    (e: OptionsError) => {
      assert.equal(e.code, 'E_OPTIONS');
      assert.match(e.message, /cron.*"61 \* \* \* \*" is not a valid cron expression/);
      return true;
    },
  );
  assert.throws(() => app.schedule({ ...ok, cron: '* * * *' }), /has 4 fields; use 5 .* or 6/);
  assert.throws(
    () => app.schedule({ ...ok, cron: '0 3 * * *', timezone: 'Mars/Base' }),
    /not an IANA time zone/,
  );
  assert.throws(
    () => app.schedule({ ...ok, cron: '0 3 * * *', every: '1m' }),
    /exactly one of cron, every, at/,
  );
  assert.throws(() => app.schedule({ ...ok, every: '10ms' }), /at least 100 ms/);
  assert.throws(
    () => app.schedule({ ...ok, task: 'nope', every: '1s' }),
    (e: TasukiError) => e.code === 'E_UNKNOWN_TASK',
  );
  assert.throws(
    () => app.schedule({ ...ok, queue: 'nope', every: '1s' }),
    (e: TasukiError) => e.code === 'E_UNKNOWN_QUEUE',
  );
  assert.throws(
    // @ts-expect-error -- the arguments are typed from the task's schema
    () => app.schedule({ ...ok, args: { day: 3 }, every: '1s' }),
    (e: TaskArgsError) => e.code === 'E_TASK_ARGS' && e.issues[0]?.path === 'args.day',
  );
  assert.throws(
    // @ts-expect-error -- not a misfire policy
    () => app.schedule({ ...ok, every: '1s', misfire: 'later' }),
    /misfire: Invalid option: expected one of "once"\|"skip" \(got "later"\)/,
  );
  // @ts-expect-error -- not an option of a schedule
  assert.throws(() => app.schedule({ ...ok, every: '1s', priority: 1 }), /priority: unknown option/);
  assert.throws(() => app.schedule({ ...ok, at: 'tomorrow' }), /at: "tomorrow" is not a time/);
  app.schedule({ ...ok, cron: '0 3 * * *', timezone: 'Asia/Tokyo' });
  assert.throws(() => app.schedule({ ...ok, every: '1s' }), /already declared/);
  assert.equal(app.declaredSchedules()[0]?.cron, '0 3 * * *');
});

test('DST in Europe/Berlin: a fixed-time job fires once on both transition nights, an interval job on both occurrences', async () => {
  const { app, report } = appWithTask();
  // misfire 'skip': the jump from March to October below must not fire the October 30 tick late.
  app.schedule({
    name: 'fixed',
    task: report,
    args: { day: 'x' },
    cron: '30 2 * * *',
    timezone: 'Europe/Berlin',
    misfire: 'skip',
  });
  app.schedule({
    name: 'half-hourly',
    task: report,
    args: { day: 'y' },
    cron: '*/30 * * * *',
    timezone: 'Europe/Berlin',
    queue: 'low',
  });
  const clock = { t: Date.parse('2027-03-27T21:59:00Z') };
  const beat = drivenBeat(app, clock);
  await beat.reconcile();
  const ticks: string[] = [];
  const traced = new Beat(
    app,
    { lease: '5s', id: 'driven' },
    {
      onTick: (e) => {
        if (e.outcome === 'enqueued') ticks.push(`${e.schedule} ${new Date(e.tick).toISOString()}`);
      },
      now: () => Promise.resolve(clock.t),
    },
  );
  // Spring forward (2027-03-28 02:00 CET -> 03:00 CEST) and fall back (2027-10-31 03:00 CEST -> 02:00 CET),
  // a round every 5 minutes through each night.
  for (const [from, to] of [
    ['2027-03-27T22:00:00Z', '2027-03-28T04:00:00Z'],
    ['2027-10-30T22:00:00Z', '2027-10-31T04:00:00Z'],
  ] as const) {
    for (clock.t = Date.parse(from); clock.t <= Date.parse(to); clock.t += 5 * 60_000) await traced.runOnce();
  }
  await traced.stop();
  await beat.stop();
  const fixed = ticks.filter((t) => t.startsWith('fixed '));
  // 02:30 does not exist on 28 March: it runs at 03:00 CEST (01:00Z). It exists twice on 31 October: once, the first.
  assert.deepEqual(fixed, ['fixed 2027-03-28T01:00:00.000Z', 'fixed 2027-10-31T00:30:00.000Z']);
  const halfHourly = ticks.filter((t) => t.startsWith('half-hourly ')).map((t) => t.slice(12));
  assert.ok(
    halfHourly.includes('2027-10-31T00:00:00.000Z') && halfHourly.includes('2027-10-31T01:00:00.000Z'),
    '02:00 CEST and 02:00 CET',
  );
  // Every half hour of both nights, none twice: 13 in the 6 hours of each night (22:00Z..04:00Z).
  assert.equal(halfHourly.length, 26);
  assert.equal(new Set(halfHourly).size, 26);
  assert.equal((await enqueued(app, 'low')).length, 26);
  assert.equal((await enqueued(app)).length, 2);
});

test('misfires after downtime: "once" enqueues one task for the missed window, "skip" none; never a burst', async () => {
  const { app, report } = appWithTask();
  const start = Date.parse('2030-01-01T00:00:00Z');
  app.schedule({ name: 'once', task: report, args: { day: 'once' }, every: '1m', misfireGrace: '30s' });
  app.schedule({
    name: 'skip',
    task: report,
    args: { day: 'skip' },
    every: '1m',
    misfire: 'skip',
    misfireGrace: '30s',
  });
  const clock = { t: start };
  const beat = drivenBeat(app, clock);
  await beat.reconcile();
  clock.t = start + 60_000 + 5;
  await beat.runOnce(); // both fire their first tick on time
  assert.equal((await enqueued(app)).length, 2);
  clock.t = start + 60 * 60_000 + 45_000; // an hour of downtime, then 45 s late for the latest tick
  await beat.runOnce();
  const tasks = await enqueued(app);
  assert.deepEqual(
    tasks.map((m) => (m as [string, { day: string }])[1].day).sort(),
    ['once', 'once', 'skip'],
    'one task for the 59 missed ticks of "once", none for "skip"',
  );
  clock.t = start + 61 * 60_000 + 1; // back on time: both fire again
  await beat.runOnce();
  assert.equal((await enqueued(app)).length, 5);
  await beat.stop();
  // The decision itself, without Redis: an on-time tick fires under either policy.
  const s = { every: 60_000, since: 0, grace: 30_000, misfire: 'skip' as const };
  assert.deepEqual(decide(s, 60_000, 180_010), { kind: 'fire', tick: 180_000, late: false, missed: true });
  assert.deepEqual(decide(s, 180_000, 200_000), { kind: 'wait', next: 240_000 });
  assert.deepEqual(decide(s, 60_000, 280_000), { kind: 'skip', tick: 240_000 });
});

test('run-time changes take effect at the next round; remove-then-add fires as expected; pause and resume', async () => {
  const { app } = appWithTask();
  const start = Date.parse('2030-02-01T00:00:00Z');
  const clock = { t: start };
  const beat = drivenBeat(app, clock);
  const schedules = beat.schedules; // the library API on the beat's clock (app.schedules reads Redis's)
  await schedules.add({ name: 'ping', task: 'report', args: { day: 'a' }, every: '10s' });
  const step = async (ms: number): Promise<void> => {
    clock.t += ms;
    await beat.runOnce();
  };
  await step(10_000); // tick at +10 s
  assert.equal((await enqueued(app)).length, 1);
  await schedules.add({ name: 'ping', task: 'report', args: { day: 'b' }, every: '1m' }); // changed at run time
  await step(10_000); // +20 s: not a tick of "every 1m"
  assert.equal((await enqueued(app)).length, 1);
  await step(40_000); // +60 s
  assert.deepEqual((await enqueued(app)).at(-1), ['report', { day: 'b' }]);
  await schedules.pause('ping');
  await step(60_000); // +120 s: paused
  assert.equal((await enqueued(app)).length, 2);
  await schedules.resume('ping');
  await step(60_000); // +180 s
  assert.equal((await enqueued(app)).length, 3);
  assert.equal(await schedules.remove('ping'), true);
  await step(60_000); // +240 s: removed
  assert.equal((await enqueued(app)).length, 3);
  assert.equal(await schedules.remove('ping'), false);
  await schedules.add({ name: 'ping', task: 'report', args: { day: 'c' }, every: '1m' }); // the same name again
  await step(60_000); // +300 s: fires (the old tick record does not hold it back, and the tick is new)
  assert.deepEqual((await enqueued(app)).at(-1), ['report', { day: 'c' }]);
  assert.equal((await enqueued(app)).length, 4);
  await assert.rejects(schedules.pause('nope'), (e: TasukiError) => e.code === 'E_NOT_FOUND');
  const [info] = await schedules.list();
  assert.equal(info?.lastTick, start + 300_000);
  assert.equal(info?.nextTick, start + 360_000);
  await beat.stop();
});

test('reconciliation: an unchanged declaration leaves run-time changes alone, a changed one wins, removal sticks', async () => {
  const { app, report } = appWithTask();
  app.schedule({ name: 'nightly', task: report, args: { day: 'v1' }, cron: '0 3 * * *' });
  const clock = { t: Date.parse('2030-03-01T00:00:00Z') };
  const first = drivenBeat(app, clock);
  await first.reconcile();
  await first.schedules.pause('nightly');
  await drivenBeat(app, clock).reconcile(); // another beat starts with the same app module
  assert.equal((await first.schedules.get('nightly'))?.paused, true, 'the pause survives');

  const next = newApp(server(), { queues: ['default', 'low'], prefix: app.keys.space.prefix });
  next.schedule({ name: 'nightly', task: define(next), args: { day: 'v2' }, cron: '0 4 * * *' }); // a deploy changed it
  await drivenBeat(next, clock).reconcile();
  const changed = await first.schedules.get('nightly');
  assert.equal(changed?.cron, '0 4 * * *');
  assert.deepEqual(changed?.args, { day: 'v2' });
  assert.equal(changed?.paused, true, 'a pause is an operator decision: it stays');

  assert.equal(await first.schedules.remove('nightly'), true);
  await drivenBeat(next, clock).reconcile();
  assert.equal(
    await first.schedules.get('nightly'),
    undefined,
    'removed at run time: the same declaration does not bring it back',
  );
  assert.equal((await first.schedules.list({ all: true }))[0]?.state, 'removed');
});

test('the tick script: a tick is enqueued once, an older lease is refused, a skip claims without enqueuing', async () => {
  const { app } = appWithTask();
  const redis = await app.redis();
  const keys = {
    tick: app.keys.tick.key({ queue: 'default', schedule: 's' }),
    stream: app.keys.stream.key({ queue: 'default' }),
    fence: app.keys.beatFence.key({ queue: 'default' }),
  };
  const call = (tick: number, fence: string, message = '["report",{"day":"x"}]', schedule = keys.tick) =>
    run(redis, beatTick({ ...keys, tick: schedule }, { tick, fence, beat: 'b', ttlMs: 60_000, message }));
  assert.equal((await call(1000, '5'))[0], 1);
  assert.deepEqual(
    await call(1000, '6'),
    [0, '1000'],
    'the same tick again, even from a newer lease: nothing',
  );
  assert.deepEqual(
    await call(2000, '4'),
    [-1, '5'],
    'a later tick from an older lease (a paused ex-leader): nothing',
  );
  assert.deepEqual(await call(3000, '10', ''), [2, '']);
  assert.equal((await call(4000, '10'))[0], 1);
  assert.equal(await redis.xlen(keys.stream), 2);
  assert.ok((await redis.pttl(keys.tick)) > 0, 'the record has a TTL');
  // A newer lease announces itself on the queue (as a new active beat does before its first claim):
  // an older lease's claim on another schedule of the queue, never ticked by the new one, is refused too.
  await run(redis, fenceSet({ value: keys.fence }, { token: '12', value: 'new', ttlMs: 60_000 }));
  const other = app.keys.tick.key({ queue: 'default', schedule: 'other' });
  assert.deepEqual(await call(5000, '10', undefined, other), [-1, '12']);
  assert.equal((await call(5000, '12', undefined, other))[0], 1);
  assert.equal(await redis.xlen(keys.stream), 3);
});

test('two beats that both think they lead (the lease taken from under one) enqueue each tick once', async () => {
  const { app, report } = appWithTask();
  app.schedule({ name: 'each-second', task: report, args: { day: 'x' }, every: '1s' });
  const start = Date.parse('2030-04-01T00:00:00Z');
  const clock = { t: start };
  const a = new Beat(app, { lease: '10s', id: 'a' }, { now: () => Promise.resolve(clock.t) });
  const b = new Beat(app, { lease: '10s', id: 'b' }, { now: () => Promise.resolve(clock.t) });
  await a.reconcile();
  await a.runOnce();
  assert.equal(a.leading, true);
  // As if A's lease expired while A did not notice (a clock jump, a long pause between its checks).
  await (await app.redis()).del(app.keys.lock.key({ name: LEASE_NAME }));
  await b.runOnce();
  assert.ok(a.leading && b.leading, 'both think they lead');
  assert.ok((b.token ?? 0n) > (a.token ?? 0n));
  for (let i = 0; i < 20; i++) {
    clock.t += 1000;
    // Both rounds at once, in either order: whichever claims the tick first enqueues it.
    const pair = i % 2 === 0 ? [a, b] : [b, a];
    await Promise.all(pair.map((beat) => beat.runOnce()));
  }
  const tasks = await enqueued(app);
  assert.equal(tasks.length, 20, 'one task per tick, though two beats claimed every tick');
  assert.equal(a.leading, false, 'A stood down once the tick record showed a newer lease');
  await a.stop();
  await b.stop();
});

test("a tick's task is an ordinary task: a worker runs it, and its id is the one beat logged", async () => {
  const { app, report } = appWithTask();
  app.schedule({ name: 'soon', task: report, args: { day: 'today' }, every: '200ms', expires: '1m' });
  const ids: string[] = [];
  const beat = new Beat(app, { lease: '5s' }, { onTick: (e) => ids.push(e.taskId) });
  const worker = new Worker(app, { concurrency: 1 });
  await worker.start();
  try {
    await beat.start();
    await until(() => ids.length > 0, 10_000, 'a tick');
    assert.equal(await app.waitForResult(ids[0] as string, { timeout: '10s' }), 'today');
  } finally {
    await beat.stop();
    await worker.stop();
  }
});

test('a one-off schedule fires once at its time, then is done; one whose time passed while added never fires', async () => {
  const { app, report } = appWithTask();
  const start = Date.parse('2030-05-01T00:00:00Z');
  app.schedule({ name: 'once', task: report, args: { day: 'launch' }, at: new Date(start + 30_000) });
  app.schedule({ name: 'past', task: report, args: { day: 'past' }, at: start - 1 });
  const clock = { t: start };
  const beat = drivenBeat(app, clock);
  await beat.reconcile();
  for (const dt of [10_000, 20_000, 1, 30_000, 3_600_000]) {
    clock.t += dt;
    await beat.runOnce();
  }
  assert.deepEqual(await enqueued(app), [['report', { day: 'launch' }]]);
  const once = await beat.schedules.get('once');
  assert.equal(once?.state, 'done');
  assert.equal(once?.nextTick, undefined);
  assert.equal(once?.lastTick, start + 30_000);
  await beat.stop();
});
