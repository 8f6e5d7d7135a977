/**
 * Canvas with real workers on a real Redis (and on a local cluster in the cluster leg, where the
 * queues below sit on different slots): every shape, nesting, member failure, a retried member, a
 * continuation that runs twice, a fenced-out settle, what is left in Redis afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  chain,
  chord,
  group,
  CanvasFailedError,
  Worker,
  type Chain,
  TasukiError,
  type Tasuki,
} from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import * as scripts from '../../src/scripts/catalogue.js';
import { GROUP } from '../../src/wire/fields.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();
const QUEUES = ['default', 'alpha', 'beta'];

/** An app with a few arithmetic tasks on different queues, and a worker serving every queue. */
async function setup(options: { maxAttempts?: number; failures?: number; start?: boolean } = {}) {
  const app = newApp(server(), { queues: QUEUES });
  const runs = new Map<string, number>();
  const ran = (name: string): void => void runs.set(name, (runs.get(name) ?? 0) + 1);
  const num = app.task({
    name: 'num',
    schema: z.object({ n: z.number(), ms: z.number().optional() }),
    handler: async ({ n, ms }) => {
      ran('num');
      if (ms) await new Promise((r) => setTimeout(r, ms));
      return n;
    },
  });
  const inc = app.task({
    name: 'inc',
    queue: 'alpha',
    schema: z.number(),
    handler: (n) => (ran('inc'), n + 1),
  });
  const double = app.task({
    name: 'double',
    queue: 'beta',
    schema: z.number(),
    handler: (n) => (ran('double'), n * 2),
  });
  const sum = app.task({
    name: 'sum',
    queue: 'alpha',
    schema: z.array(z.number()),
    handler: (ns) => (ran('sum'), ns.reduce((a, b) => a + b, 0)),
  });
  let failures = options.failures ?? Infinity;
  const boom = app.task({
    name: 'boom',
    queue: 'beta',
    schema: z.object({ n: z.number() }),
    maxAttempts: options.maxAttempts ?? 1,
    backoff: { type: 'fixed', delay: 10 },
    handler: ({ n }) => {
      ran('boom');
      if (failures-- > 0) throw new Error(`boom ${n}`);
      return n;
    },
  });
  const worker = new Worker(app, { logger: silentLogger(), queues: QUEUES, promoteIntervalMs: 20 });
  if (options.start !== false) await worker.start();
  return { app, worker, runs, num, inc, double, sum, boom };
}

/** Until every queue's stream is empty and nothing is pending: all members and continuations ran. */
async function drained(app: Tasuki): Promise<void> {
  const redis = server().client();
  await until(
    async () => {
      for (const queue of QUEUES) {
        const stream = app.keys.stream.key({ queue });
        if ((await redis.exists(stream)) === 0) continue;
        if ((await redis.xlen(stream)) > 0) return false;
        if (Number(((await redis.xpending(stream, GROUP)) as [number])[0]) > 0) return false;
        if ((await redis.zcard(app.keys.delayed.key({ queue }))) > 0) return false;
      }
      return true;
    },
    30_000,
    'every queue drained',
  );
}

test('chain: each result feeds the next task, across queues; result() resolves the last one', async () => {
  const { app, worker, runs, num, inc, double } = await setup();
  const handle = await chain(num.s({ n: 3 }), inc.s(), double.s(), inc.s()).enqueue();
  const result: number = await handle.result({ timeout: '30s' });
  assert.equal(result, 9); // (3 + 1) * 2 + 1
  assert.equal(handle.members.length, 4);
  assert.deepEqual(await Promise.all(handle.members.map((m) => m.result({ timeout: '5s' }))), [3, 4, 8, 9]);
  assert.deepEqual(
    handle.members.map((m) => m.queue),
    ['default', 'alpha', 'beta', 'alpha'],
  );
  assert.equal((await app.getTask(handle.id))?.state, 'succeeded');
  await drained(app);
  assert.deepEqual(Object.fromEntries(runs), { num: 1, inc: 2, double: 1 });
  await worker.stop();
});

test('group: members run side by side and the results come in the order given', async () => {
  const { app, worker, num, double } = await setup();
  // The first member finishes last.
  const handle = await group([
    num.s({ n: 1, ms: 300 }),
    num.s({ n: 2 }),
    double.s(7),
    num.s({ n: 4, ms: 100 }),
  ]).enqueue();
  const result: [number, number, number, number] = await handle.result({ timeout: '30s' });
  assert.deepEqual(result, [1, 2, 14, 4]);
  await drained(app);
  await worker.stop();
});

test('chord: the callback gets every result in order and runs exactly once', async () => {
  const { app, worker, runs, num, sum } = await setup();
  const header = Array.from({ length: 20 }, (_, i) => num.s({ n: i, ms: (i * 7) % 30 }));
  const handle = await chord(header, sum.s()).enqueue();
  assert.equal(await handle.result({ timeout: '30s' }), 190);
  await drained(app);
  assert.equal(runs.get('sum'), 1);
  assert.equal(runs.get('num'), 20);
  await worker.stop();
});

test('nesting: a chain of groups, a chord inside a chain, a group of chains', async () => {
  const { app, worker, runs, num, inc, double, sum } = await setup();
  // chain of groups: [2, 3] → sum 5 → group of inc and double of 5 → [6, 10]
  const a = await chain(
    group([num.s({ n: 2 }), num.s({ n: 3 })]),
    sum.s(),
    group([inc.s(), double.s()]),
  ).enqueue();
  // a chord inside a chain: 4 → chord([inc, double] of 4 → [5, 8], sum → 13) → inc → 14
  const b = await chain(num.s({ n: 4 }), chord([inc.s(), double.s()], sum.s()), inc.s()).enqueue();
  // a group of chains: [(1 + 1) * 2, (10 * 2) + 1]
  const c = await group([
    chain(num.s({ n: 1 }), inc.s(), double.s()),
    chain(num.s({ n: 10 }), double.s(), inc.s()),
  ]).enqueue();
  assert.deepEqual(await a.result({ timeout: '30s' }), [6, 10]);
  assert.equal(await b.result({ timeout: '30s' }), 14);
  assert.deepEqual(await c.result({ timeout: '30s' }), [4, 21]);
  await drained(app);
  assert.equal(runs.get('sum'), 2);
  await worker.stop();
});

test('a failed member: the callback never runs, the chain stops, result() names the member', async () => {
  const { app, worker, runs, num, inc, sum, boom } = await setup();
  const handle = await chord(
    [num.s({ n: 1 }), boom.s({ n: 2 }), num.s({ n: 3, ms: 200 })],
    sum.s(),
  ).enqueue();
  const err = await handle.result({ timeout: '30s' }).then(
    () => assert.fail('the chord resolved'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CanvasFailedError);
  assert.equal(err.code, 'E_CANVAS_FAILED');
  assert.equal(err.member.task, 'boom');
  assert.equal(err.member.id, handle.members[1]?.id);
  assert.equal(err.member.state, 'failed');
  assert.equal(err.remote.message, 'boom 2');
  assert.match(err.message, /member boom \(.+\) failed: Error: boom 2/);
  // The error is visible on the canvas itself, from any process.
  const info = await app.getTask(handle.id);
  assert.equal(info?.state, 'failed');
  assert.match(info?.error?.message ?? '', /member boom .* failed: Error: boom 2/);
  // The slow member still finishes; its continuation finds the canvas failed and starts nothing.
  await drained(app);
  assert.equal(runs.get('num'), 2);
  assert.equal(runs.get('sum'), undefined, 'the callback never ran');
  assert.equal(await app.getTask(handle.members[3]!.id), null, 'the callback was never enqueued');

  const stopped = await chain(num.s({ n: 1 }), boom.s({ n: 5 }), inc.s(), inc.s()).enqueue();
  await assert.rejects(stopped.result({ timeout: '30s' }), (e: unknown) => {
    assert.ok(e instanceof CanvasFailedError);
    assert.equal(e.member.id, stopped.members[1]?.id);
    return true;
  });
  await drained(app);
  assert.equal(runs.get('inc'), undefined, 'the chain stopped at the failed member');
  await worker.stop();
});

test('a retried member counts once: the chord fires once, with the successful result', async () => {
  const { app, worker, runs, num, sum, boom } = await setup({ maxAttempts: 3, failures: 2 });
  const handle = await chord([num.s({ n: 1 }), boom.s({ n: 40 })], sum.s()).enqueue();
  assert.equal(await handle.result({ timeout: '30s' }), 41);
  await drained(app);
  assert.equal(runs.get('boom'), 3);
  assert.equal(runs.get('sum'), 1);
  assert.equal((await handle.members[1]!.info())?.attempt, 3);
  await worker.stop();
});

test('a continuation that runs twice (its worker died before settling) changes nothing', async () => {
  const { app, worker, runs, num, sum } = await setup();
  const redis = server().client();
  const handle = await chord([num.s({ n: 5 }), num.s({ n: 6 })], sum.s()).enqueue();
  const stream = app.keys.stream.key({ queue: 'default' });
  assert.equal(await handle.result({ timeout: '30s' }), 11);
  await drained(app);
  await worker.stop();
  const continuations = (await redis.xrange(app.keys.stream.key({ queue: 'default' }), '-', '+')).length;
  assert.equal(continuations, 0);
  // Replay both members' continuations (as finish.lua wrote them) twice more: nothing may fire again.
  const records = await Promise.all(handle.members.slice(0, 2).map((m) => m.info()));
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 2; i++) {
      const r = records[i]!;
      const record = {
        state: r.state,
        task: r.task,
        attempt: r.attempt,
        worker: 'w',
        startedAt: 1,
        finishedAt: 2,
        result: r.result,
      };
      const ref = `${handle.id}:${i + 2}`;
      await redis.xadd(stream, '*', 'm', JSON.stringify(['tasuki.canvas', { c: ref, r: record }]));
    }
  }
  const w3 = new Worker(app, { logger: silentLogger(), queues: QUEUES });
  await w3.start();
  await drained(app);
  await w3.stop();
  assert.equal(runs.get('sum'), 1, 'the callback ran once');
  assert.equal(await handle.result({ timeout: '5s' }), 11);
});

test('a fenced-out settle (the attempt was taken over) appends no continuation', async () => {
  const app = newApp(server(), { queues: ['default'] });
  const t = app.task({ name: 't', schema: z.object({}), handler: () => 1 });
  const redis = server().client();
  await redis.info(); // connected
  const k = app.keys;
  const stream = k.stream.key({ queue: 'default' });
  await redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
  const message = t.memberMessage(
    {},
    { id: '1-cab12n1', canvas: '1-cab12@default:1', queue: 'default' },
  ).message;
  const entry = (await redis.xadd(stream, '*', 'm', message)) as string;
  await redis.xreadgroup('GROUP', GROUP, 'c1', 'COUNT', 1, 'STREAMS', stream, '>');
  scripts.registerScripts(redis);
  const call = (deliveries: number) =>
    scripts.run(
      redis,
      scripts.finish(
        {
          stream,
          events: k.events.key({ queue: 'default' }),
          parked: k.parked.key({ queue: 'default' }),
          delayed: k.delayed.key({ queue: 'default' }),
          dead: k.dead.key({ queue: 'default' }),
          moves: k.moves.key({ queue: 'default' }),
        },
        {
          group: GROUP,
          ttlMs: 60_000,
          eventsMaxLen: 100,
          deadMaxLen: 100,
          deadMinId: '0',
          consumer: 'c1',
          resultKey: (id) => k.result.key({ queue: 'default', task: id }),
          tasks: [
            {
              entry,
              id: '1-cab12n1',
              record: '{"state":"succeeded","result":1}',
              outcome: 'done',
              parked: true,
              dropRecord: false,
              deliveries,
              canvas: '1-cab12@default:1',
            },
          ],
        },
      ),
    );
  // Another worker took it over (its delivery count is 2 now): this worker's settle is stale.
  assert.deepEqual(await call(2), [0, entry]);
  assert.equal(await redis.xlen(stream), 1, 'only the member itself: no continuation');
  // The live attempt's settle appends exactly one.
  assert.deepEqual(await call(1), [1]);
  const left = await redis.xrange(stream, '-', '+');
  assert.equal(left.length, 1);
  assert.deepEqual(JSON.parse(left[0]![1][1]!), [
    'tasuki.canvas',
    { c: '1-cab12@default:1', r: { state: 'succeeded', result: 1 } },
  ]);
});

test('nothing is left behind but records with TTLs; plain tasks carry no canvas meta', async () => {
  const { app, worker, num, inc, sum } = await setup({ start: false });
  const plain = await num.enqueue({ n: 1 });
  const raw = await server()
    .client()
    .xrange(app.keys.stream.key({ queue: 'default' }), '-', '+');
  assert.equal(raw.at(-1)?.[1][1], '["num",{"n":1}]', 'a plain task has no meta at all');
  await worker.start();
  await plain.result({ timeout: '30s' });
  const handle = await chord([num.s({ n: 1 }), chain(num.s({ n: 2 }), inc.s())], sum.s()).enqueue();
  assert.equal(await handle.result({ timeout: '30s' }), 4);
  await drained(app);
  await worker.stop();
  const redis = server().client();
  await redis.exists(app.keys.stream.key({ queue: 'default' })); // connected (a cluster: every node known)
  const keys = await redis.keys(`${app.keys.space.prefix}:*`);
  const noTtl = ['queues', 'workers', ':stream', ':moves', ':events', ':dead', ':delayed', ':parked'];
  for (const key of keys) {
    const ttl = await redis.pttl(key);
    if (ttl === -1)
      assert.ok(
        noTtl.some((s) => key.endsWith(s)),
        `${key} has no TTL`,
      );
  }
  assert.ok(keys.some((key) => key.includes(':canvas:')));
  assert.ok(keys.some((key) => key.includes(':cvm:')));
  for (const queue of QUEUES) {
    assert.equal(await redis.hlen(app.keys.parked.key({ queue })), 0, `${queue}: parked fields left`);
  }
});

test('a canvas is checked before anything is written', async () => {
  const { app, num, inc, boom } = await setup({ start: false });
  const redis = server().client();
  await redis.exists(app.keys.stream.key({ queue: 'default' }));
  const before = await redis.keys(`${app.keys.space.prefix}:*`);
  // A compile error too: the head of a chain has no input (the cast shows the check at run time).
  const headless = chain(inc.s(), inc.s()) as unknown as Chain<unknown, number>;
  await assert.rejects(
    headless.enqueue(),
    /task "inc" takes the previous member's result, but nothing comes before it/,
  );
  await assert.rejects(
    group([num.s({ n: 1 }), num.s({ n: 'x' } as never)]).enqueue(),
    (e: unknown) => e instanceof TasukiError && e.code === 'E_TASK_ARGS' && /group\[1\]/.test(e.message),
  );
  await assert.rejects(
    chain(num.s({ n: 1 }).set({ queue: 'nope' })).enqueue(),
    (e: unknown) => e instanceof TasukiError && e.code === 'E_UNKNOWN_QUEUE',
  );
  assert.throws(() => group([]), /a group needs at least one member/);
  assert.throws(() => chain([boom as never]), /member \[0\] is not a canvas member/);
  assert.throws(
    () => app.task({ name: 'tasuki.canvas', schema: z.object({}), handler: () => 1 }),
    /already defined/,
  );
  assert.deepEqual(await redis.keys(`${app.keys.space.prefix}:*`), before);
});

test('a result the next member refuses fails that member (invalid-args), and the canvas', async () => {
  const { app, worker, runs, num, sum } = await setup();
  // Typed code would not compile (sum takes number[]); a cast stands for untyped callers.
  const handle = await chain(num.s({ n: 1 }), sum.s() as never).enqueue();
  const err = await handle.result({ timeout: '30s' }).then(
    () => assert.fail('the chain resolved'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CanvasFailedError);
  assert.equal(err.member.task, 'sum');
  assert.equal(err.remote.code, 'E_TASK_ARGS');
  assert.equal((await handle.members[1]!.info())?.error?.code, 'E_TASK_ARGS');
  const dead = await app.deadLetters.list('alpha');
  assert.equal(dead[0]?.reason, 'invalid-args');
  await drained(app);
  assert.equal(runs.get('sum'), undefined);
  await worker.stop();
});

test('types: a member that takes its input must accept what comes before it', () => {
  const app = newApp(server(), { queues: QUEUES });
  const n = app.task({ name: 'n', schema: z.object({ n: z.number() }), handler: ({ n }) => n });
  const text = app.task({ name: 'text', schema: z.string(), handler: (s) => s.length });
  const total = app.task({ name: 'total', schema: z.array(z.number()), handler: (ns) => ns.length });
  // Checked by the compiler (npm run typecheck covers the tests); nothing is enqueued here.
  const ok = chain(n.s({ n: 1 }), n.s({ n: 2 }), text.s('bound: ignores its input'));
  const okChord = chord([n.s({ n: 1 }), text.s('x')], total.s());
  // @ts-expect-error text takes a string, n resolves a number
  const bad = chain(n.s({ n: 1 }), text.s());
  // @ts-expect-error a chord's callback takes the tuple of the header's results
  const badChord = chord([n.s({ n: 1 }), n.s({ n: 2 })], text.s());
  const headless = (): unknown =>
    // @ts-expect-error the head of a canvas needs its arguments: nothing comes before it
    chain(text.s(), n.s({ n: 1 })).enqueue();
  const results: Promise<[number, number]> = group([n.s({ n: 1 }), text.s('x')])
    .enqueue()
    .then((h) => h.result());
  void results.catch(() => undefined);
  assert.ok(ok && okChord && bad && badChord && headless);
});

test('members can be looked up by id: queued once enqueued, unknown until then', async () => {
  const { app, worker, num, inc } = await setup({ start: false });
  const handle = await chain(num.s({ n: 1 }), inc.s()).enqueue();
  assert.equal((await handle.members[0]!.info())?.state, 'queued');
  assert.equal(await handle.members[1]!.info(), null, 'the second member is enqueued after the first');
  assert.equal((await handle.info())?.state, 'queued');
  await worker.start();
  assert.equal(await handle.result({ timeout: '30s' }), 2);
  assert.equal((await handle.members[1]!.info())?.state, 'succeeded');
  assert.equal((await app.getTask(handle.id))?.state, 'succeeded');
  await drained(app);
  await worker.stop();
});

test('a result that cannot be the next arguments (too big without a store, none) fails the canvas', async () => {
  const app = newApp(server(), { payloads: { inlineLimit: 1024 } });
  const big = app.task({ name: 'big', schema: z.object({}), handler: () => 'x'.repeat(4096) });
  const after = app.task({ name: 'after', schema: z.string(), handler: (s) => s.length });
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const handle = await chain(big.s({}), after.s()).enqueue();
  await assert.rejects(handle.result({ timeout: '30s' }), (e: unknown) => {
    assert.ok(e instanceof CanvasFailedError);
    assert.equal(e.member.id, handle.members[1]?.id);
    assert.equal(e.remote.code, 'E_PAYLOAD_TOO_LARGE');
    return true;
  });
  assert.equal(await handle.members[1]!.info(), null, 'never enqueued');
  // Bound arguments too big: the enqueue throws, and writes nothing.
  await assert.rejects(
    chain(after.s('x'.repeat(4096))).enqueue(),
    (e: unknown) => e instanceof TasukiError && e.code === 'E_PAYLOAD_TOO_LARGE',
  );
  const redis = server().client();
  await redis.exists(app.keys.stream.key({ queue: 'default' }));
  const canvases = (await redis.keys(`${app.keys.space.prefix}:*`)).filter((k) => k.includes(':canvas:'));
  assert.equal(canvases.length, 1, 'only the canvas above');
  // A handler that returns nothing has no result to pass on: the next member fails the same way.
  const nothing = app.task({ name: 'nothing', schema: z.object({}), handler: () => undefined });
  const empty = await chain(nothing.s({}), after.s() as never).enqueue();
  await assert.rejects(empty.result({ timeout: '30s' }), (e: unknown) => {
    assert.ok(e instanceof CanvasFailedError);
    assert.equal(e.member.id, empty.members[1]?.id);
    assert.equal(e.remote.code, 'E_TASK_ARGS');
    return true;
  });
  await worker.stop();
});

test('a revoked or cancelled member fails its canvas at once (the continuation comes from the revoke)', async () => {
  const { app, worker, runs, num, sum } = await setup({ start: false });
  const handle = await chord([num.s({ n: 1 }), num.s({ n: 2 }), num.s({ n: 3 })], sum.s()).enqueue();
  // No worker runs yet: every member waits in its queue, and the second is revoked there.
  await app.revoke(handle.members[1]!.id);
  const cancelled = await chord([num.s({ n: 4 }), num.s({ n: 5 })], sum.s()).enqueue();
  await app.cancel(cancelled.members[0]!.id);
  await worker.start();
  for (const [h, member, state] of [
    [handle, 1, 'revoked'],
    [cancelled, 0, 'cancelled'],
  ] as const) {
    const err = await h.result({ timeout: '30s' }).then(
      () => assert.fail('the chord resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CanvasFailedError);
    assert.equal(err.member.id, h.members[member]?.id);
    assert.equal(err.member.state, state);
  }
  await drained(app);
  assert.equal(runs.get('num'), 3, 'the members not revoked or cancelled ran');
  assert.equal(runs.get('sum'), undefined, 'no callback ran');
  await worker.stop();
});
