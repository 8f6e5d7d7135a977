import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { OptionsError, TaskArgsError, TasukiError, UnknownQueueError } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

function setup() {
  const app = newApp(server(), { queues: ['default', 'emails'], maxPayloadBytes: 1024 });
  const send = app.task({
    name: 'email.send',
    queue: 'emails',
    schema: z.object({ to: z.email(), subject: z.string().min(1), n: z.number().int().optional() }),
    handler: () => 'sent',
  });
  const keys = async () => server().client().keys(`${app.keys.space.prefix}:*`);
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
  assert.ok(ttl > 0 && ttl <= app.idempotencyTtlMs, `ttl ${ttl}`);
});

test('a long idempotency key is stored as a hash, never as a long key name', async () => {
  const { send, keys } = setup();
  const raw = 'x'.repeat(4000);
  const a = await send.enqueue({ to: 'a@example.com', subject: 's' }, { idempotencyKey: raw });
  const b = await send.enqueue({ to: 'a@example.com', subject: 's' }, { idempotencyKey: raw });
  assert.equal(b.id, a.id);
  for (const k of await keys()) assert.ok(k.length < 100, `key name of ${k.length} chars`);
});

test('enqueueMany writes all items in one MULTI and returns handles in order', async () => {
  const { app, send } = setup();
  const handles = await send.enqueueMany(
    Array.from({ length: 250 }, (_, n) => ({ args: { to: `u${n}@example.com`, subject: 's', n } })),
  );
  assert.equal(handles.length, 250);
  const entries = await server()
    .client()
    .xrange(app.keys.stream.key({ queue: 'emails' }), '-', '+');
  assert.equal(entries.length, 250);
  entries.forEach(([entry, fields], n) => {
    assert.equal(handles[n]?.id, `${entry}@emails`);
    assert.equal((JSON.parse(fields[1] as string) as [string, { n: number }])[1].n, n);
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

test('Redis at maxmemory: enqueue fails with E_REDIS naming OOM, and a bulk writes nothing', async () => {
  const { app, send } = setup();
  const admin = server().client();
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
  await admin.config('SET', 'maxmemory', String(used - 1024));
  try {
    await assert.rejects(send.enqueue({ to: 'a@example.com', subject: 's' }), (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_REDIS');
      assert.match(err.message, /OOM.*nothing was written.*maxmemory/);
      return true;
    });
    await assert.rejects(
      send.enqueueMany([
        { args: { to: 'a@example.com', subject: 's' } },
        { args: { to: 'b@example.com', subject: 's' } },
      ]),
      /E?OOM|EXECABORT/,
    );
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  assert.equal(await admin.xlen(app.keys.stream.key({ queue: 'emails' })), 0);
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
  const { app, send } = setup();
  await server().client().script('FLUSH');
  const handles = await send.enqueueMany([
    { args: { to: 'a@example.com', subject: 'now' } },
    { args: { to: 'b@example.com', subject: 'later' }, options: { delay: '1h' } },
    { args: { to: 'c@example.com', subject: 'once' }, options: { idempotencyKey: 'k-mixed' } },
    { args: { to: 'd@example.com', subject: 'now too' } },
  ]);
  assert.deepEqual(await Promise.all(handles.map(async (h) => (await h.info())?.state)), [
    'queued',
    'delayed',
    'queued',
    'queued',
  ]);
  assert.equal(handles[2]?.created, true);
  assert.equal(
    await server()
      .client()
      .xlen(app.keys.stream.key({ queue: 'emails' })),
    3,
  );
  const again = await send.enqueueMany([
    { args: { to: 'c@example.com', subject: 'once' }, options: { idempotencyKey: 'k-mixed' } },
  ]);
  assert.equal(again[0]?.id, handles[2]?.id);
  assert.equal(again[0]?.created, false);
});
