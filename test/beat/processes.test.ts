/**
 * `tasuki beat` as real processes on one Redis: two and three replicas with the active one SIGKILLed
 * midway, a leader SIGSTOPped past its lease and SIGCONTed, and schedules changed at run time through
 * the CLI while beats run. Every enqueued tick is read back from the queue (its time is in the message),
 * so duplicates and gaps are counted exactly.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Redis } from 'ioredis';
import { tasukiKeys } from '../../src/index.js';
import { randomPrefix, useRedis } from '../support/redis.js';
import { runCli } from '../support/cli.js';
import {
  FIXTURE_APP,
  checkTicks,
  enqueuedTicks,
  killAll,
  startBeat,
  enqueuedBySince,
  redisMs,
  untilLeader,
  untilSteppedDown,
  untilTasks,
  type BeatProcess,
} from './support.js';

const server = useRedis();
after(killAll);

/**
 * The failover bound with the tests' options (lease 1 s, standby interval 100 ms): a standby takes the
 * lease at most 1.1 s after the leader died, then enqueues the latest due tick. Between two ticks in
 * the queue there are then at most 1 s (the period) + 1.1 s; the check allows 5 s so a loaded machine
 * (two cores shared by several test runs) does not make it flaky. Without failover, gaps are 1 s.
 */
const MAX_GAP_MS = 5000;

function env(prefix: string): Record<string, string> {
  return { TASUKI_REDIS_URL: server().url, PREFIX: prefix };
}

async function stopAll(beats: readonly BeatProcess[]): Promise<void> {
  for (const b of beats)
    if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGTERM');
  await Promise.all(beats.map((b) => b.exited));
}

async function failover(replicas: number): Promise<void> {
  const prefix = randomPrefix();
  const redis: Redis = server().client();
  const beats = Array.from({ length: replicas }, (_, i) => startBeat(`b${i}`, env(prefix)));
  await untilTasks(redis, prefix, 1);
  const first = await untilLeader(beats);
  await untilTasks(redis, prefix, 4);
  first.child.kill('SIGKILL');
  await first.exited;
  const before = (await enqueuedTicks(redis, prefix)).length;
  const second = await untilLeader(beats.filter((b) => b !== first));
  assert.notEqual(second, first);
  await untilTasks(redis, prefix, before + 4);
  await stopAll(beats);
  const ticks = await enqueuedTicks(redis, prefix);
  const gaps = checkTicks(ticks, MAX_GAP_MS);
  assert.ok(gaps.length <= 1, `one failover, so at most one gap over 1 s: ${gaps.join(', ')}`);
  // Each replica that led logged its own ticks; together they are the queue's, none twice.
  const logged = beats.flatMap((b) =>
    b.lines.filter((l) => l.msg === 'tick enqueued').map((l) => Date.parse(l.tick as string)),
  );
  assert.ok(logged.length <= ticks.length && logged.every((t) => ticks.includes(t)));
  // The standbys never enqueued anything while the first one led.
  const firstTicks = first.lines.filter((l) => l.msg === 'tick enqueued').length;
  assert.ok(firstTicks >= 3, `the first leader enqueued ${firstTicks}`);
}

test('two beats, the active one SIGKILLed midway: every tick once, one gap within the failover bound', async () => {
  await failover(2);
});

test('three beats, the active one SIGKILLed midway: every tick once, one gap within the failover bound', async () => {
  await failover(3);
});

test('the leader SIGSTOPped past its lease: another takes over; after SIGCONT the old one enqueues nothing', async () => {
  const prefix = randomPrefix();
  const redis: Redis = server().client();
  const beats = [startBeat('a', env(prefix)), startBeat('b', env(prefix))];
  await untilTasks(redis, prefix, 1);
  const paused = await untilLeader(beats);
  const other = beats.find((b) => b !== paused) as BeatProcess;
  await untilTasks(redis, prefix, 3);
  paused.child.kill('SIGSTOP');
  await other.logged('lease taken: this beat is active');
  const n = (await enqueuedTicks(redis, prefix)).length;
  await untilTasks(redis, prefix, n + 3);
  const wokeAt = await redisMs(redis);
  paused.child.kill('SIGCONT');
  // Woken, it finds its lease lost (its validity ended while it was stopped) and stands by.
  await untilSteppedDown(paused);
  const m = (await enqueuedTicks(redis, prefix)).length;
  await untilTasks(redis, prefix, m + 3);
  await stopAll(beats);
  assert.deepEqual(
    await enqueuedBySince(redis, prefix, paused, wokeAt),
    [],
    'the ex-leader enqueued nothing after it woke',
  );
  const gaps = checkTicks(await enqueuedTicks(redis, prefix), MAX_GAP_MS + 1000);
  assert.ok(gaps.length <= 1, `gaps: ${gaps.join(', ')}`);
});

test('schedules changed at run time through the CLI take effect without restarting beats; remove-then-add fires again', async () => {
  const prefix = randomPrefix();
  const redis: Redis = server().client();
  const e = env(prefix);
  const beats = [startBeat('a', e), startBeat('b', e)];
  await untilTasks(redis, prefix, 1);
  const cli = async (...args: string[]): Promise<string> => {
    const r = await runCli(['schedule', ...args, '--app', FIXTURE_APP], e);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const extraCount = async (): Promise<number> => {
    const entries = await redis.xrange(tasukiKeys(prefix).stream.key({ queue: 'default' }), '-', '+');
    return entries.filter(([, f]) => (f[1] as string).includes('"from":"cli"')).length;
  };
  const untilExtra = async (n: number): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while ((await extraCount()) < n) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${n} ticks of the added schedule`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await cli('add', 'extra', '--task', 'ping', '--args', '{"from":"cli"}', '--every', '500ms');
  await untilExtra(3);
  assert.match(await cli('list'), /extra\s+ping\s+default\s+every 500 ms\s+active/);
  await cli('remove', 'extra');
  // The removal is seen within one refresh (200 ms): wait two ticks of the other schedule, then count.
  const settled = await extraCount();
  const n = await redis.xlen(tasukiKeys(prefix).stream.key({ queue: 'default' }));
  await untilTasks(redis, prefix, n + 2);
  assert.ok((await extraCount()) <= settled + 1, 'at most a tick already in flight after the removal');
  const afterRemoval = await extraCount();
  await untilTasks(
    redis,
    prefix,
    (await redis.xlen(tasukiKeys(prefix).stream.key({ queue: 'default' }))) + 2,
  );
  assert.equal(await extraCount(), afterRemoval, 'nothing fires once removed');
  await cli('add', 'extra', '--task', 'ping', '--args', '{"from":"cli"}', '--every', '500ms');
  await untilExtra(afterRemoval + 2);
  await stopAll(beats);
});

test('SIGTERM: the active beat releases its lease and exits 0; a standby takes over without waiting out the lease', async () => {
  const prefix = randomPrefix();
  const redis: Redis = server().client();
  const args = ['--lease', '30s', '--standby-interval', '100ms', '--refresh', '200ms'];
  const beats = [startBeat('a', env(prefix), args), startBeat('b', env(prefix), args)];
  await untilTasks(redis, prefix, 2);
  const active = await untilLeader(beats);
  const other = beats.find((b) => b !== active) as BeatProcess;
  const stoppedAt = Date.now();
  active.child.kill('SIGTERM');
  await other.logged('lease taken: this beat is active');
  const tookMs = Date.now() - stoppedAt;
  const [code] = (await active.exited) as [number | null];
  assert.equal(code, 0);
  assert.equal(active.count('lease released'), 1);
  assert.ok(tookMs < 10_000, `taken over ${tookMs} ms after SIGTERM, far less than the 30 s lease`);
  const n = await redis.xlen(tasukiKeys(prefix).stream.key({ queue: 'default' }));
  await untilTasks(redis, prefix, n + 2);
  await stopAll(beats);
  checkTicks(await enqueuedTicks(redis, prefix), MAX_GAP_MS);
});
