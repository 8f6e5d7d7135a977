/**
 * Channels on Redis Streams, on one server and on a local 3 + 3 cluster: fan-out to every
 * subscriber with its own cursor, resume after the last id seen, a consumer group sharing the work,
 * bounded by length and age, one slot per channel, typed messages; and tasuki's own lifecycle events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { Worker, type LifecycleEvent, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { slotOf } from '../../src/connection/slots.js';
import { TestCluster, TestRedis } from '../../src/testing/index.js';
import { newApp, until } from '../support/redis.js';

const schema = z.object({ n: z.number().int(), text: z.string() });

for (const kind of ['server', 'cluster'] as const) {
  describe(`channels on a ${kind}`, () => {
    let target: TestRedis | TestCluster;
    before(async () => {
      target = kind === 'server' ? await TestRedis.start() : await TestCluster.start();
    });
    after(() => target?.close());
    const app = (options = {}): Tasuki => newApp(target, { logger: silentLogger(), ...options });

    test('fan-out: every subscriber gets every message, in order, with its own cursor', async () => {
      const a = app();
      const ch = a.channel({ name: 'news', schema });
      const seen: number[][] = [[], [], []];
      const subs = seen.map((list) => ch.subscribe(({ data }) => void list.push(data.n)));
      // Subscribed before the first publish: each resolves '$' on its own connection first.
      await until(() => subs.every((s) => s.lastId !== '$'), 10_000, 'subscribers to start');
      const ids = await ch.publish(...Array.from({ length: 50 }, (_, n) => ({ n, text: `m${n}` })));
      assert.equal(ids.length, 50);
      await until(() => seen.every((l) => l.length === 50), 10_000, 'every subscriber to get 50');
      for (const l of seen) assert.deepEqual(l, [...Array(50).keys()]);
      await Promise.all(subs.map((s) => s.close()));
      assert.equal(subs[0]?.lastId, ids[49]);
    });

    test('resume: a subscriber that closed picks up after the last id it saw', async () => {
      const ch = app().channel({ name: 'orders', schema });
      await ch.publish({ n: 1, text: 'a' }, { n: 2, text: 'b' });
      const first: number[] = [];
      const s1 = ch.subscribe(({ data }) => void first.push(data.n), { from: '0' });
      await until(() => first.length === 2, 10_000, 'the first two');
      await s1.close();
      await ch.publish({ n: 3, text: 'c' }, { n: 4, text: 'd' }); // while it was away
      const second: number[] = [];
      const s2 = ch.subscribe(({ data }) => void second.push(data.n), { from: s1.lastId });
      await until(() => second.length === 2, 10_000, 'what was missed');
      await s2.close();
      assert.deepEqual(second, [3, 4]);
    });

    test('consumer group: the members share the messages, each handled once and acknowledged', async () => {
      const a = app();
      const ch = a.channel({ name: 'jobs', schema });
      const by = new Map<number, string>();
      const members = ['w1', 'w2', 'w3'].map((consumer) =>
        ch.consume('workers', ({ data }) => void by.set(data.n, consumer), { consumer, from: '0' }),
      );
      await ch.publish(...Array.from({ length: 300 }, (_, n) => ({ n, text: '' })));
      await until(() => by.size === 300, 20_000, 'all 300 handled');
      await Promise.all(members.map((m) => m.close()));
      const redis = await a.redis();
      const pending = (await redis.xpending(ch.key, 'workers')) as [number];
      assert.equal(pending[0], 0, 'every message acknowledged');
    });

    test('bounded by length and age; one slot per channel; bad messages refused at publish', async () => {
      const a = app();
      const redis = await a.redis();
      const short = a.channel({ name: 'short', schema, maxLen: 100 });
      for (let i = 0; i < 10; i++)
        await short.publish(...Array.from({ length: 100 }, (_, n) => ({ n, text: 'x'.repeat(50) })));
      const len = await redis.xlen(short.key);
      assert.ok(len >= 100 && len < 300, `kept about maxLen entries, got ${len}`);
      const young = a.channel({ name: 'young', schema, maxAge: 100 });
      await young.publish(...Array.from({ length: 200 }, (_, n) => ({ n, text: '' })));
      await new Promise((r) => setTimeout(r, 150)); // age is the point here, nothing to wait on
      await young.publish({ n: -1, text: 'new' });
      // MINID ~ trims whole stream nodes (100 entries each): the old ones are gone but for one node.
      assert.ok((await redis.xlen(young.key)) <= 101, 'entries older than maxAge trimmed');
      assert.equal(new Set([short.key].map(slotOf)).size, 1);
      await assert.rejects(
        short.publish({ n: 'one' } as unknown as { n: number; text: string }),
        /does not match its schema/,
      );
    });

    test('task lifecycle events go through the queue channel (events: true)', async () => {
      const a = app({ events: true });
      const channel = a.taskEvents('default');
      const seen: string[] = [];
      const events: LifecycleEvent[] = [];
      const sub = channel.subscribe(
        ({ data }) => {
          seen.push(`${data.type}:${data.id}`);
          events.push(data);
        },
        { from: '0' },
      );
      let tries = 0;
      const t = a.task({
        name: 'flaky',
        schema: z.object({ fail: z.boolean() }),
        maxAttempts: 2,
        backoff: { type: 'fixed', delay: 10 },
        handler: ({ fail }) => {
          if (fail && tries++ < 5) throw new Error('boom');
          return 1;
        },
      });
      const ok = await t.enqueue({ fail: false });
      const bad = await t.enqueue({ fail: true });
      const worker = new Worker(a, { logger: silentLogger(), promoteIntervalMs: 20 });
      await worker.start();
      await ok.result({ timeout: '20s' });
      await assert.rejects(bad.result({ timeout: '20s' }));
      await worker.stop();
      // The task event map's events (src/events/event-map.ts), the same the app and workers emit in
      // process: a failed attempt is `retried` or `dead`, each with its error.
      const want = [
        `enqueued:${ok.id}`,
        `started:${ok.id}`,
        `succeeded:${ok.id}`,
        `enqueued:${bad.id}`,
        `started:${bad.id}`,
        `retried:${bad.id}`,
        `started:${bad.id}`,
        `dead:${bad.id}`,
      ];
      await until(() => seen.length >= want.length, 10_000, `events ${want.join(', ')}`);
      assert.deepEqual(
        seen.filter((s) => s.endsWith(ok.id)),
        want.filter((s) => s.endsWith(ok.id)),
      );
      // An outcome is published once it is recorded, and a retry may start before that: the order
      // holds per attempt (its start before its outcome), not across a retry.
      const badEvents = events.filter((e) => e.id === bad.id);
      assert.deepEqual(badEvents.map((e) => `${e.type}:${e.attempt ?? '-'}`).sort(), [
        'dead:2',
        'enqueued:-',
        'retried:1',
        'started:1',
        'started:2',
      ]);
      assert.equal(badEvents[0]?.type, 'enqueued');
      for (const [attempt, outcome] of [
        [1, 'retried'],
        [2, 'dead'],
      ] as const) {
        const at = (type: string): number =>
          badEvents.findIndex((e) => e.type === type && e.attempt === attempt);
        assert.ok(at('started') < at(outcome), `attempt ${attempt}: started, then ${outcome}`);
      }
      const dead = events.find((e) => e.type === 'dead');
      assert.deepEqual([dead?.attempt, dead?.reason, dead?.error?.message], [2, 'max-attempts', 'boom']);
      const succeeded = events.find((e) => e.type === 'succeeded');
      assert.equal(succeeded?.worker, worker.name);
      assert.ok(succeeded && !('result' in succeeded), 'no result on the channel: look the task up');
      await sub.close();
    });
  });
}
