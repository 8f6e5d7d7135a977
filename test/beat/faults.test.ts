/**
 * Beat under faults of its host: the active beat cut off from Redis (a proxy between them is cut,
 * then restored), and a beat whose wall clock is stepped back and forth. Ticks are counted exactly.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { Redis } from 'ioredis';
import { randomPrefix, useRedis } from '../support/redis.js';
import {
  checkTicks,
  enqueuedBySince,
  enqueuedTicks,
  killAll,
  redisMs,
  startBeat,
  untilLeader,
  untilSteppedDown,
  untilTasks,
  type BeatProcess,
} from './support.js';

const server = useRedis();
after(killAll);

/** A TCP proxy to the test Redis that can be cut (every connection dropped, new ones refused) and restored. */
async function proxy(port: number): Promise<{ url: string; cut(): void; restore(): void; close(): void }> {
  const sockets = new Set<Socket>();
  let down = false;
  const srv: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const address = srv.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${address.port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

async function stopAll(beats: readonly BeatProcess[]): Promise<void> {
  for (const b of beats)
    if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGTERM');
  await Promise.all(beats.map((b) => b.exited));
}

test('the active beat cut off from Redis: a standby takes over; reconnected, the old one enqueues nothing', async () => {
  const prefix = randomPrefix();
  const redis: Redis = server().client();
  const p = await proxy(server().port);
  try {
    const cutOff = startBeat('cut', { TASUKI_REDIS_URL: p.url, PREFIX: prefix });
    await untilTasks(redis, prefix, 2);
    assert.equal(await untilLeader([cutOff]), cutOff);
    const other = startBeat('direct', { TASUKI_REDIS_URL: server().url, PREFIX: prefix });
    await other.logged('beat started; standing by for the lease');
    await untilTasks(redis, prefix, 3);
    const cutAt = await redisMs(redis);
    p.cut();
    await other.logged('lease taken: this beat is active');
    const n = (await enqueuedTicks(redis, prefix)).length;
    await untilTasks(redis, prefix, n + 2);
    p.restore();
    await untilSteppedDown(cutOff);
    const m = (await enqueuedTicks(redis, prefix)).length;
    await untilTasks(redis, prefix, m + 3);
    await stopAll([cutOff, other]);
    // A claim sent just before the cut may have been written then (its reply lost): that is before cutAt
    // only if Redis wrote it before; anything the cut-off beat wrote after the cut would be a second writer.
    assert.deepEqual(
      await enqueuedBySince(redis, prefix, cutOff, cutAt + 1),
      [],
      'nothing enqueued by the cut-off beat after the cut',
    );
    const gaps = checkTicks(await enqueuedTicks(redis, prefix), 6000);
    assert.ok(gaps.length <= 1, `gaps: ${gaps.join(', ')}`);
  } finally {
    p.close();
  }
});

test('a beat whose host clock is stepped back and forth by hours: every tick once, none missing', async () => {
  const prefix = randomPrefix();
  const redis: Redis = server().client();
  const preload = fileURLToPath(new URL('./fixtures/stepped-clock.mjs', import.meta.url));
  const beat = startBeat('stepped', {
    TASUKI_REDIS_URL: server().url,
    PREFIX: prefix,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim(),
  });
  await untilTasks(redis, prefix, 8); // about 8 s: the clock stepped 5 times
  await stopAll([beat]);
  const ticks = await enqueuedTicks(redis, prefix);
  assert.deepEqual(checkTicks(ticks, 1000), [], 'consecutive whole seconds');
  assert.ok(ticks.length >= 8);
  // The log's own timestamps did jump (the process saw the stepped clock).
  const times = beat.lines.map((l) => Date.parse(l.time as string)).filter(Number.isFinite);
  assert.ok(
    times.some((t, i) => i > 0 && Math.abs(t - (times[i - 1] as number)) > 1_800_000),
    'the host clock stepped',
  );
});
