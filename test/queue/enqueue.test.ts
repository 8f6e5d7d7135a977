import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  MemoryFullError,
  OptionsError,
  TaskArgsError,
  TasukiError,
  UnknownQueueError,
  type AppOptions,
  type StandardSchemaV1,
  type Tasuki,
} from '../../src/index.js';
import { TestRedis } from '../../src/testing/index.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

const DAY_MS = 86_400_000;

/** Runs `fn` against a redis-server of its own, so INFO commandstats and `KEYS *` see only `fn`'s work. */
async function withOwnRedis(fn: (own: TestRedis) => Promise<void>): Promise<void> {
  const own = await TestRedis.start();
  try {
    await fn(own);
  } finally {
    await own.close();
  }
}

/**
 * Resets the server's command statistics once the app is connected, and returns a function that
 * reads them: calls per command, EVAL and EVALSHA counted together as `script`, without the INFO and
 * CONFIG of the counting itself.
 */
async function commandCounter(own: TestRedis, app: Tasuki): Promise<() => Promise<Record<string, number>>> {
  const admin = own.client();
  await app.redis();
  await admin.config('RESETSTAT');
  return async () => {
    const counts: Record<string, number> = {};
    for (const [, name, calls] of (await admin.info('commandstats')).matchAll(
      /cmdstat_([\w|]+):calls=(\d+)/g,
    )) {
      const cmd = name === 'eval' || name === 'evalsha' ? 'script' : (name as string);
      if (cmd === 'info' || cmd.startsWith('config')) continue;
      counts[cmd] = (counts[cmd] ?? 0) + Number(calls);
    }
    return counts;
  };
}

/** A Standard Schema whose validate returns a Promise: `{ n }` with n a numeric string. */
const asyncSchema: StandardSchemaV1<{ n: string }, { n: number }> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: async (value) => {
      await new Promise((r) => setImmediate(r));
      const n = (value as { n?: unknown } | null)?.n;
      if (typeof n !== 'string' || !/^\d+$/.test(n)) {
        return { issues: [{ message: 'not a numeric string', path: ['n'] }] };
      }
      return { value: { n: Number(n) } };
    },
  },
};

function setup(redis: TestRedis = server(), options: AppOptions = {}) {
  const app = newApp(redis, { queues: ['default', 'emails'], maxPayloadBytes: 1024, ...options });
  const send = app.task({
    name: 'email.send',
    queue: 'emails',
    schema: z.object({ to: z.email(), subject: z.string().min(1), n: z.number().int().optional() }),
    handler: () => 'sent',
  });
  const keys = async () => redis.client().keys(`${app.keys.space.prefix}:*`);
  return { app, send, keys };
}

test('enqueue writes one stream entry and returns a task id that names its queue', async () => {
  const { app, send } = setup();
  const h = await send.enqueue({ to: 'a@example.com', subject: 'hi' });
  assert.match(h.id, /^\d+-\d+@emails$/);
  assert.equal(h.queue, 'emails');
  assert.equal(h.created, true);
  const entries = await server()
    .client()
    .xrange(app.keys.stream.key({ queue: 'emails' }), '-', '+');
  assert.equal(entries.length, 1);
  assert.deepEqual(entries[0]?.[1], ['m', '["email.send",{"to":"a@example.com","subject":"hi"}]']);
  assert.equal(h.id, `${entries[0]?.[0]}@emails`);
  assert.deepEqual(await h.info(), { id: h.id, queue: 'emails', state: 'queued' });
});

test('invalid arguments: TaskArgsError naming every bad field, nothing written', async () => {
  const { send, keys } = setup();
  await assert.rejects(send.enqueue({ to: 'not-an-email', subject: '' }), (err: unknown) => {
    assert.ok(err instanceof TaskArgsError);
    assert.equal(err.code, 'E_TASK_ARGS');
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['to', 'subject'],
    );
    assert.match(err.message, /invalid arguments for task "email\.send": to: .*; subject: /);
    return true;
  });
  assert.deepEqual(await keys(), []);
});

test('unknown queue, unknown option and contradictory options are rejected before Redis', async () => {
  const { send, keys } = setup();
  const args = { to: 'a@example.com', subject: 'hi' };
  await assert.rejects(send.enqueue(args, { queue: 'nope' }), UnknownQueueError);
  await assert.rejects(
    send.enqueue(args, { delay: '5s', eta: Date.now() + 1000 }),
    /delay: give delay or eta, not both/,
  );
  await assert.rejects(
    send.enqueue(args, { expires: '1s', expiresAt: Date.now() + 1000 }),
    /give expires or expiresAt/,
  );
  await assert.rejects(send.enqueue(args, { delay: '10s', expires: '5s' }), /expires before the task is due/);
  await assert.rejects(send.enqueue(args, { expiresAt: Date.now() - 1 }), /expiresAt: is in the past/);
  await assert.rejects(send.enqueue(args, { delay: 'soon' as never }), /delay: "soon" is not a duration/);
  await assert.rejects(send.enqueue(args, { dealy: 5 } as never), (err: unknown) => {
    assert.ok(err instanceof OptionsError);
    assert.equal(err.issues[0]?.path, 'dealy');
    assert.match(err.message, /unknown option/);
    return true;
  });
  await assert.rejects(
    send.enqueue(args, { idempotencyKey: '' }),
    /idempotencyKey: must be a non-empty string/,
  );
  assert.deepEqual(await keys(), []);
});

test('arguments over maxPayloadBytes: E_PAYLOAD_TOO_LARGE saying what to do, nothing written', async () => {
  const { send, keys } = setup();
  await assert.rejects(send.enqueue({ to: 'a@example.com', subject: 'x'.repeat(2000) }), (err: unknown) => {
    assert.ok(err instanceof TasukiError);
    assert.equal(err.code, 'E_PAYLOAD_TOO_LARGE');
    assert.match(err.message, /over the limit of 1024 bytes.*claim check/);
    return true;
  });
  assert.deepEqual(await keys(), []);
});

test('a delayed task waits in the delayed set and reports its due time', async () => {
  const { app, send } = setup();
  const before = Date.now();
  const h = await send.enqueue({ to: 'a@example.com', subject: 'later' }, { delay: '1h' });
  assert.match(h.id, /^\d+-d[0-9a-f]+@emails$/);
  const info = await h.info();
  assert.equal(info?.state, 'delayed');
  assert.ok(
    info?.dueAt !== undefined && info.dueAt >= before + 3_600_000 && info.dueAt <= Date.now() + 3_600_000,
  );
  assert.equal(
    await server()
      .client()
      .xlen(app.keys.stream.key({ queue: 'emails' })),
    0,
  );
  assert.equal(
    await server()
      .client()
      .zcard(app.keys.delayed.key({ queue: 'emails' })),
    1,
  );
});

test('an eta in the past runs at once', async () => {
  const { send } = setup();
  const h = await send.enqueue({ to: 'a@example.com', subject: 'now' }, { eta: new Date(Date.now() - 1000) });
  assert.equal((await h.info())?.state, 'queued');
});

test('idempotency key: the second enqueue returns the first task and writes nothing', async () => {
  const { app, send } = setup();
  const a = await send.enqueue({ to: 'a@example.com', subject: 'once' }, { idempotencyKey: 'order-42' });
  const b = await send.enqueue({ to: 'a@example.com', subject: 'twice' }, { idempotencyKey: 'order-42' });
  assert.equal(a.created, true);
  assert.equal(b.created, false);
  assert.equal(b.id, a.id);
  assert.equal(
    await server()
      .client()
      .xlen(app.keys.stream.key({ queue: 'emails' })),
    1,
  );
  const ttl = await server()
    .client()
    .pttl(app.keys.idempotency.key({ queue: 'emails', key: 'order-42' }));
  // The documented default, pinned: 24 h. (Not app.idempotencyTtlMs, which a wrong default would pass.)
  assert.ok(ttl > DAY_MS - 60_000 && ttl <= DAY_MS, `ttl ${ttl}, expected about ${DAY_MS}`);
});

test('a custom idempotency TTL: the key is remembered that long, and an enqueue after it creates a new task', async () => {
  const app = newApp(server(), { idempotencyTtl: '400ms' });
  const t = app.task({ name: 'once', schema: z.object({ n: z.number() }), handler: () => 1 });
  const redis = server().client();
  const key = app.keys.idempotency.key({ queue: 'default', key: 'k' });
  const first = await t.enqueue({ n: 1 }, { idempotencyKey: 'k' });
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 0 && ttl <= 400, `ttl ${ttl}`);
  const repeat = await t.enqueue({ n: 2 }, { idempotencyKey: 'k' });
  assert.equal(repeat.created, false);
  assert.equal(repeat.id, first.id);
  // Redis expiring the key is the signal, not a sleep of about 400 ms.
  await until(async () => (await redis.exists(key)) === 0, 30_000, 'the idempotency key to expire');
  const after = await t.enqueue({ n: 3 }, { idempotencyKey: 'k' });
  assert.equal(after.created, true);
  assert.notEqual(after.id, first.id);
  assert.equal(await redis.get(key), after.id.split('@')[0]);
  assert.equal(await redis.xlen(app.keys.stream.key({ queue: 'default' })), 2, 'two tasks in all');
  // The same through enqueueMany.
  await until(async () => (await redis.exists(key)) === 0, 30_000, 'the idempotency key to expire again');
  const [bulk] = await t.enqueueMany([{ args: { n: 4 }, options: { idempotencyKey: 'k' } }]);
  assert.equal(bulk?.created, true);
  assert.notEqual(bulk?.id, after.id);
});

test('a long idempotency key is stored as a hash, never as a long key name', async () => {
  const { send, keys } = setup();
  const raw = 'x'.repeat(4000);
  const a = await send.enqueue({ to: 'a@example.com', subject: 's' }, { idempotencyKey: raw });
  const b = await send.enqueue({ to: 'a@example.com', subject: 's' }, { idempotencyKey: raw });
  assert.equal(b.id, a.id);
  for (const k of await keys()) assert.ok(k.length < 100, `key name of ${k.length} chars`);
});

test("enqueueMany writes a queue's plain items with one script call (one round trip) and returns handles in order", async () => {
  await withOwnRedis(async (own) => {
    const { app, send } = setup(own);
    const stats = await commandCounter(own, app);
    const handles = await send.enqueueMany(
      Array.from({ length: 250 }, (_, n) => ({ args: { to: `u${n}@example.com`, subject: 's', n } })),
    );
    // One EVAL(SHA) of enqueue_bulk; the 250 XADDs are the script's own, inside that one command.
    assert.deepEqual(await stats(), { script: 1, xadd: 250 });
    assert.equal(handles.length, 250);
    const entries = await own.client().xrange(app.keys.stream.key({ queue: 'emails' }), '-', '+');
    assert.equal(entries.length, 250);
    entries.forEach(([entry, fields], n) => {
      assert.equal(handles[n]?.id, `${entry}@emails`);
      assert.equal((JSON.parse(fields[1] as string) as [string, { n: number }])[1].n, n);
    });
  });
});

test('enqueueMany with one bad item: names the item and writes none', async () => {
  const { send, keys } = setup();
  await assert.rejects(
    send.enqueueMany([
      { args: { to: 'a@example.com', subject: 's' } },
      { args: { to: 'bad', subject: 's' } },
      { args: { to: 'c@example.com', subject: 's' }, options: { queue: 'emails', delay: -1 } },
    ]),
    (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.match(err.message, /\[1\]\.to/);
      return true;
    },
  );
  assert.deepEqual(await keys(), []);
});

test('Redis at maxmemory: every kind of enqueue fails with E_MEMORY_FULL naming OOM and writes nothing', async () => {
  await withOwnRedis(async (own) => {
    // The guard off: this is about Redis's own refusal (test/limits/memory-guard.test.ts has the guard).
    const { app, send } = setup(own, { memoryGuard: false });
    const admin = own.client();
    await app.redis();
    const to = (n: number) => ({ to: `u${n}@example.com`, subject: 's' });
    const attempts: [string, () => Promise<unknown>][] = [
      ['enqueue', () => send.enqueue(to(1))],
      ['enqueue delayed', () => send.enqueue(to(2), { delay: '1h' })],
      ['enqueue idempotent', () => send.enqueue(to(3), { idempotencyKey: 'solo' })],
      ['enqueueMany plain', () => send.enqueueMany([{ args: to(4) }, { args: to(5) }])],
      [
        // One MULTI: the enqueue_bulk script, a schedule script and an enqueue_unique script.
        'enqueueMany mixed',
        () =>
          send.enqueueMany([
            { args: to(6) },
            { args: to(7), options: { delay: '1h' } },
            { args: to(8), options: { idempotencyKey: 'mixed' } },
            { args: to(9), options: { delay: '2h', idempotencyKey: 'mixed-later' } },
          ]),
      ],
      [
        // One MULTI of scripts only: each is refused at its first write.
        'enqueueMany delayed and idempotent',
        () =>
          send.enqueueMany([
            { args: to(10), options: { delay: '1h' } },
            { args: to(11), options: { idempotencyKey: 'only-scripts' } },
          ]),
      ],
    ];
    await admin.config('SET', 'maxmemory', '1');
    try {
      for (const [what, attempt] of attempts) {
        await assert.rejects(attempt(), (err: unknown) => {
          assert.ok(err instanceof TasukiError, `${what}: ${String(err)}`);
          assert.equal(err.code, 'E_MEMORY_FULL', what);
          assert.ok(err instanceof MemoryFullError && err.retryable, what);
          // A MULTI is discarded whole (EXECABORT); the error names the queued command's refusal.
          assert.match(err.message, /OOM.*nothing was written.*maxmemory/, what);
          assert.match(err.message, /nothing was written/, what);
          return true;
        });
        // No stream entry, delayed member, parked message or idempotency key: no key at all.
        assert.deepEqual(await admin.keys('*'), [], `${what} wrote something`);
      }
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
    // The same calls work once there is memory: the refusals were OOM, nothing else.
    for (const [, attempt] of attempts) await attempt();
    assert.equal(await admin.xlen(app.keys.stream.key({ queue: 'emails' })), 7);
    assert.equal(await admin.zcard(app.keys.delayed.key({ queue: 'emails' })), 4);
    assert.equal(await admin.hlen(app.keys.parked.key({ queue: 'emails' })), 4);
    assert.equal((await admin.keys(app.keys.idempotency.key({ queue: 'emails', key: '*' }))).length, 4);
  });
});

test('task definitions are checked: duplicate names, unknown queue, bad schema', () => {
  const { app } = setup();
  assert.throws(
    () => app.task({ name: 'email.send', schema: z.object({}), handler: () => 1 }),
    /already defined/,
  );
  assert.throws(
    () => app.task({ name: 'x', queue: 'other', schema: z.object({}), handler: () => 1 }),
    UnknownQueueError,
  );
  assert.throws(
    () => app.task({ name: 'y', schema: {} as never, handler: () => 1 }),
    /schema: must be a schema/,
  );
  assert.throws(
    () => app.task({ name: 'bad name', schema: z.object({}), handler: () => 1 }),
    /is not a task name/,
  );
});

test('app options are checked up front', () => {
  assert.throws(() => newApp(server(), { queues: [] }), /queues: must be a non-empty array/);
  assert.throws(() => newApp(server(), { queues: ['a b'] }), /not a valid queue name/);
  assert.throws(() => newApp(server(), { resultTtl: 'forever' as never }), /resultTtl/);
  assert.throws(() => newApp(server(), { colour: 'red' } as never), /colour: unknown option/);
});

test('Redis down after start: enqueue fails fast with E_REDIS (nothing written), and works again once it is back', async () => {
  const { TestRedis } = await import('../../src/testing/index.js');
  const own = await TestRedis.start();
  try {
    const app = newApp(own);
    const t = app.task({ name: 'ping', schema: z.object({}), handler: () => 1 });
    await t.enqueue({});
    await own.stop();
    const started = Date.now();
    await assert.rejects(t.enqueue({}), (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_REDIS');
      assert.match(err.message, /Redis is unreachable.*nothing was written/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    await own.server.start();
    let handle;
    for (let i = 0; i < 50 && !handle; i++) handle = await t.enqueue({}).catch(() => undefined);
    assert.ok(handle, 'enqueue works again after Redis is back');
    assert.equal(await own.client().xlen(app.keys.stream.key({ queue: 'default' })), 1);
  } finally {
    await own.close();
  }
});

test('enqueueMany mixing plain, delayed and idempotent items writes them all in one MULTI, even with an empty script cache', async () => {
  await withOwnRedis(async (own) => {
    const { app, send } = setup(own);
    await own.client().script('FLUSH');
    const stats = await commandCounter(own, app);
    const handles = await send.enqueueMany([
      { args: { to: 'a@example.com', subject: 'now' } },
      { args: { to: 'b@example.com', subject: 'later' }, options: { delay: '1h' } },
      { args: { to: 'c@example.com', subject: 'once' }, options: { idempotencyKey: 'k-mixed' } },
      { args: { to: 'd@example.com', subject: 'now too' } },
    ]);
    // One MULTI ... EXEC round trip holding three scripts (bulk, schedule, enqueue_unique); the
    // rest are the scripts' own commands.
    assert.deepEqual(await stats(), {
      multi: 1,
      exec: 1,
      script: 3,
      xadd: 3,
      zadd: 1,
      hset: 1,
      get: 1,
      set: 1,
    });
    assert.deepEqual(await Promise.all(handles.map(async (h) => (await h.info())?.state)), [
      'queued',
      'delayed',
      'queued',
      'queued',
    ]);
    assert.equal(handles[2]?.created, true);
    assert.equal(await own.client().xlen(app.keys.stream.key({ queue: 'emails' })), 3);
    const again = await send.enqueueMany([
      { args: { to: 'c@example.com', subject: 'once' }, options: { idempotencyKey: 'k-mixed' } },
    ]);
    assert.equal(again[0]?.id, handles[2]?.id);
    assert.equal(again[0]?.created, false);
    assert.equal(await own.client().xlen(app.keys.stream.key({ queue: 'emails' })), 3);
  });
});

test('arguments JSON cannot encode (BigInt, a cycle): E_TASK_ARGS naming the item, nothing written', async () => {
  const app = newApp(server());
  const loose = app.task({ name: 'loose', schema: z.any(), handler: () => 1 });
  const keys = async () => server().client().keys(`${app.keys.space.prefix}:*`);
  const circular: Record<string, unknown> = { name: 'loop' };
  circular.self = circular;
  for (const [what, args] of [
    ['BigInt', { amount: 10n }],
    ['cycle', circular],
  ] as const) {
    await assert.rejects(loose.enqueue(args), (err: unknown) => {
      assert.ok(err instanceof TaskArgsError, what);
      assert.equal(err.code, 'E_TASK_ARGS');
      assert.match(err.message, /not JSON-serialisable/, what);
      assert.match(err.message, /nothing was enqueued/, what);
      return true;
    });
    await assert.rejects(loose.enqueue(args, { delay: '1h', idempotencyKey: what }), TaskArgsError);
    await assert.rejects(
      loose.enqueueMany([{ args: { fine: true } }, { args }, { args: { fine: 2 } }]),
      (err: unknown) => {
        assert.ok(err instanceof TaskArgsError, what);
        assert.deepEqual(
          err.issues.map((i) => i.path),
          ['[1]'],
          what,
        );
        return true;
      },
    );
  }
  await assert.rejects(loose.enqueue(undefined), /not JSON-serialisable/);
  assert.deepEqual(await keys(), []);
});

test('an asynchronous schema (validate returns a Promise) is awaited by enqueue and enqueueMany', async () => {
  const app = newApp(server());
  const t = app.task({ name: 'async.args', schema: asyncSchema, handler: ({ n }) => n });
  const keys = async () => server().client().keys(`${app.keys.space.prefix}:*`);
  await assert.rejects(t.enqueue({ n: 'x' }), (err: unknown) => {
    assert.ok(err instanceof TaskArgsError);
    assert.deepEqual(err.issues, [{ path: 'n', message: 'not a numeric string' }]);
    return true;
  });
  await assert.rejects(t.enqueueMany([{ args: { n: '1' } }, { args: { n: 'y' } }]), (err: unknown) => {
    assert.ok(err instanceof TaskArgsError);
    assert.deepEqual(err.issues, [{ path: '[1].n', message: 'not a numeric string' }]);
    return true;
  });
  assert.deepEqual(await keys(), [], 'nothing written by the refused enqueues');
  const h = await t.enqueue({ n: '5' });
  const [h2, h3] = await t.enqueueMany([
    { args: { n: '6' } },
    { args: { n: '7' }, options: { delay: '1h' } },
  ]);
  assert.equal((await h.info())?.state, 'queued');
  assert.equal((await h2?.info())?.state, 'queued');
  assert.equal((await h3?.info())?.state, 'delayed');
  // What is written is the arguments as given (the worker validates them again).
  const entries = await server()
    .client()
    .xrange(app.keys.stream.key({ queue: 'default' }), '-', '+');
  assert.deepEqual(
    entries.map(([, fields]) => fields[1]),
    ['["async.args",{"n":"5"}]', '["async.args",{"n":"6"}]'],
  );
});
