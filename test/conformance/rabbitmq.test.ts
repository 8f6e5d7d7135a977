// The broker conformance suite (./suite.ts) on RabbitMQ, then what only RabbitMQ has: its own
// dead-lettering (the quorum queue's delivery limit) and channels that close under running tasks.
// One throw-away node for the file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Connection, ConsumerStatus } from 'rabbitmq-client';
import { z } from 'zod';
import { envelopeOf } from '../../src/broker/rabbitmq-connection.js';
import { firstCopy } from '../../src/broker/rabbitmq-outbox.js';
import { DELIVERY_LIMIT, ONCE_HEADER, queueName } from '../../src/broker/rabbitmq-topology.js';
import { Beat, TaskFailedError, Worker, chord, type Tasuki } from '../../src/index.js';
import { freePort } from '../../src/testing/index.js';
import { silentLogger } from '../../src/log/logger.js';
import * as scripts from '../../src/scripts/catalogue.js';
import { OUTBOX_ID_FIELD, OUTBOX_MESSAGE_FIELD, fieldValue } from '../../src/wire/fields.js';
import { continuationLocalId } from '../../src/wire/ids.js';
import { decodeMessage, encodeContinuation } from '../../src/wire/message.js';
import { encodeRecord } from '../../src/wire/record.js';
import { bookkeeping, count } from '../fixtures/counting-app.js';
import { useBroker } from '../support/brokers.js';
import { randomPrefix, until } from '../support/redis.js';
import { startWorker } from '../support/workers.js';
import { conformance } from './suite.js';

const broker = useBroker('rabbitmq');

async function withConnection<T>(fn: (conn: Connection) => Promise<T>): Promise<T> {
  const conn = new Connection(broker.brokerUrl());
  conn.on('error', () => undefined);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

conformance(broker, (app, queue, body) =>
  // As a foreign producer would: a message on the queue with no id and no type.
  withConnection(async (conn) => {
    const pub = conn.createPublisher({ confirm: true });
    await pub.send({ routingKey: queueName(app.keys.space.prefix, queue), durable: true }, body);
    await pub.close();
  }),
);

test('rabbitmq: over the delivery limit RabbitMQ dead-letters a task itself; workers move it to tasuki dlq', async (t) => {
  const app = broker.app();
  let runs = 0;
  const task = app.task({
    name: 'survivor',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => {
      runs++;
      return n;
    },
  });
  const h = await task.enqueue({ n: 5 });
  // A consumer that dies on every delivery, as a task that crashes its worker would: RabbitMQ
  // requeues it each time until the quorum queue's delivery limit, then dead-letters it.
  let deliveries = 0;
  await withConnection(async (conn) => {
    let limitReached: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => (limitReached = resolve));
    const sub = conn.createConsumer(
      {
        queue: queueName(app.keys.space.prefix, 'default'),
        queueOptions: { passive: true },
        qos: { prefetchCount: 1 },
      },
      () => {
        if (++deliveries === DELIVERY_LIMIT) limitReached();
        return ConsumerStatus.REQUEUE;
      },
    );
    sub.on('error', () => undefined);
    await reached;
    // The next return is over the limit: RabbitMQ dead-letters it instead of delivering it again.
    await new Promise((r) => setTimeout(r, 500));
    await sub.close();
  });
  assert.ok(deliveries >= DELIVERY_LIMIT, `delivered ${deliveries} times`);
  const w = new Worker(app, { logger: silentLogger(), promoteIntervalMs: 20 });
  await w.start();
  t.after(() => w.stop());
  await until(async () => (await app.deadLetters.list('default')).length === 1, 20_000, 'the dead letter');
  const [dead] = await app.deadLetters.list('default');
  assert.equal(dead?.taskId, h.id);
  assert.equal(dead?.reason, 'max-deliveries');
  assert.equal(dead?.task, 'survivor');
  assert.equal(runs, 0, 'it never ran');
  await assert.rejects(h.result({ timeout: '5s' }), /dead-lettered it after/);
  assert.deepEqual(await app.deadLetters.retry('default', { all: true }), { retried: 1, skipped: 0 });
  assert.equal(await h.result({ timeout: '20s' }), 5);
  assert.equal(runs, 1);
});

test('rabbitmq: the connection is cut under a running task: its outcome is not recorded, it runs again, one result', async (t) => {
  const app = broker.app();
  let runs = 0;
  let cut: () => void = () => undefined;
  const cutDone = new Promise<void>((resolve) => (cut = resolve));
  const slow = app.task({
    name: 'slow',
    schema: z.object({}),
    handler: async () => {
      const run = ++runs;
      if (run === 1) await cutDone; // the first attempt finishes only after its channel is gone
      return run;
    },
  });
  const w = new Worker(app, { logger: silentLogger(), promoteIntervalMs: 20 });
  await w.start();
  t.after(() => w.stop());
  const h = await slow.enqueue({});
  await until(() => runs === 1, 20_000, 'the first attempt to start');
  // What a consumer timeout or a network cut does: the broker closes the worker's connection and
  // requeues what it had not acked.
  await broker.rabbit().ctl(['close_all_connections', 'test: cut']);
  cut();
  assert.equal(await h.result({ timeout: '60s' }), 2, 'the result of the attempt that could be acked');
  assert.equal(runs, 2);
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'succeeded');
  assert.equal(info?.attempt, 1);
});

test('rabbitmq: a task cancelled while it ran on a worker that then died is recorded cancelled by the next worker, without running', async (t) => {
  const prefix = randomPrefix();
  const app = broker.app({ prefix });
  const producer = app.task({ name: count.name, schema: count.definition.schema, handler: () => 0 });
  // The counting app's handler sleeps first (and ignores its signal): it is still running when killed.
  const child = await startWorker(broker.redis(), prefix, ['--concurrency', '1'], {
    TASK_DELAY_MS: '60000',
    ...broker.env(),
  });
  const h = await producer.enqueue({ i: 1 });
  await until(async () => (await app.getTask(h.id))?.state === 'active', 30_000, 'the task to start');
  const r = await app.cancel(h.id, { by: 'test' });
  assert.equal(r.outcome, 'cancelling');
  assert.equal(r.was, 'running');
  child.child.kill('SIGKILL');
  await child.done;
  // RabbitMQ gives the message to the next consumer; its claim finds the cancel and records it.
  let ran = 0;
  const other = broker.app({ prefix });
  other.task({ name: count.name, schema: count.definition.schema, handler: () => ++ran });
  const w = new Worker(other, { logger: silentLogger() });
  await w.start();
  t.after(() => w.stop());
  await assert.rejects(
    h.result({ timeout: '30s' }),
    (err: unknown) => err instanceof TaskFailedError && err.remote.code === 'E_CANCELLED',
  );
  const info = await app.getTask(h.id);
  assert.equal(info?.state, 'cancelled');
  assert.equal(info?.error?.code, 'E_CANCELLED');
  assert.equal(ran, 0, 'it did not run again');
  const { runs } = bookkeeping(prefix);
  assert.equal(await broker.redis().client().hlen(runs.key({})), 0, 'the killed attempt never finished');
  assert.equal((await app.queueStats('default')).waiting, 0);
});

test('rabbitmq: no broker at the URL: enqueue and worker start fail with E_BROKER, password masked', async () => {
  const port = await freePort();
  const app = broker.app({ broker: `amqp://guest:s3cret@127.0.0.1:${port}` });
  const task = app.task({ name: 'nowhere', schema: z.object({}), handler: () => null });
  const worker = new Worker(app, { logger: silentLogger() });
  const check = (err: unknown): boolean => {
    assert.equal((err as { code?: string }).code, 'E_BROKER');
    assert.match((err as Error).message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.doesNotMatch((err as Error).message, /s3cret/);
    return true;
  };
  await Promise.all([assert.rejects(task.enqueue({}), check), assert.rejects(worker.start(), check)]);
});

test('rabbitmq: a crash between the Redis step and the publish: workers relay the outbox, each task runs once', async (t) => {
  const prefix = randomPrefix();
  const ran: string[] = [];
  const define = (app: Tasuki) => ({
    part: app.task({
      name: 'part',
      schema: z.object({ i: z.number() }),
      handler: ({ i }) => {
        ran.push(`part ${i}`);
        return i;
      },
    }),
    total: app.task({
      name: 'total',
      queue: 'other',
      schema: z.array(z.number()),
      handler: (ns) => {
        ran.push('total');
        return ns.reduce((a, b) => a + b, 0);
      },
    }),
    tock: app.task({
      name: 'tock',
      schema: z.object({}),
      handler: (_args, ctx) => void ran.push(`tock ${ctx.id}`),
    }),
  });
  const producer = broker.app({ prefix, queues: ['default', 'other'] });
  const { part, total, tock } = define(producer);
  // From here on every publish of the producer fails, as if it died right after each Redis step.
  await ((await producer.publisher()) as unknown as { close(): Promise<void> }).close();
  // A chord: stored, its members written to the outbox with their start markers, not published.
  const h = await chord(
    [0, 1, 2, 3, 4].map((i) => part.s({ i })),
    total.s(),
  ).enqueue();
  // A beat claims two ticks: their tasks wait in the outbox too.
  producer.schedule({ name: 'tick', task: tock, args: {}, every: '1s' });
  const logged: string[] = [];
  const clock = { t: Date.now() };
  const beat = new Beat(
    producer,
    { lease: '5s', id: 'crashing' },
    { now: () => Promise.resolve(clock.t), onTick: (e) => void logged.push(e.taskId) },
  );
  t.after(() => beat.stop());
  await beat.reconcile();
  for (let i = 0; i < 2; i++) {
    clock.t += 1000;
    await beat.runOnce();
  }
  assert.equal(logged.length, 2);
  const redis = broker.redis().client();
  const outbox = producer.keys.outbox.key({ queue: 'default' });
  const waiting = (await redis.xrange(outbox, '-', '+')) as [string, string[]][];
  assert.equal(waiting.length, 7, 'five members and two ticks in the outbox');
  assert.deepEqual(ran, [], 'nothing ran');
  // Member 0 ran on a worker that died after recording it: its continuation, written to the outbox
  // by the same record_outcomes call as its outcome (what the worker's settle does), never published.
  const [first, firstFields] = waiting[0]!;
  const member = decodeMessage(fieldValue(firstFields, OUTBOX_MESSAGE_FIELD));
  const memberId = member.id as string;
  await redis.xdel(outbox, first);
  const record = encodeRecord({
    state: 'succeeded',
    task: 'part',
    attempt: 1,
    worker: 'died',
    startedAt: Date.now(),
    finishedAt: Date.now(),
    result: 0,
  });
  const cid = continuationLocalId(memberId);
  const [fenced] = await scripts.run(
    await producer.redis(),
    scripts.recordOutcomes(
      {
        events: producer.keys.events.key({ queue: 'default' }),
        dead: producer.keys.dead.key({ queue: 'default' }),
        delayed: producer.keys.delayed.key({ queue: 'default' }),
        purges: producer.keys.purges.key({ queue: 'default' }),
        tickets: producer.keys.tickets.key({ queue: 'default' }),
        outbox,
      },
      {
        ttlMs: 60_000,
        eventsMaxLen: 1000,
        deadMaxLen: 1000,
        deadMinId: '0',
        tasks: [{ id: memberId, record, outcome: 'done', dropRecord: false }],
        resultKey: (task) => producer.keys.result.key({ queue: 'default', task }),
        outbox: [
          { id: cid, message: encodeContinuation(member.canvas as string, record, cid), after: memberId },
        ],
      },
    ),
  );
  assert.equal(fenced, 0);
  assert.equal(await redis.xlen(outbox), 7, 'four members, two ticks and a continuation');
  // The crash fell between the confirm and the delete for the last tick: published, still there.
  const [entry, fields] = waiting[6]!;
  const id = fieldValue(fields, OUTBOX_ID_FIELD) as string;
  const message = fieldValue(fields, OUTBOX_MESSAGE_FIELD) as string;
  await withConnection(async (conn) => {
    const pub = conn.createPublisher({ confirm: true });
    const envelope = envelopeOf(prefix, 'default', id, message, 0, 0);
    await pub.send({ ...envelope, headers: { [ONCE_HEADER]: entry } }, message);
    await pub.close();
  });
  // A worker relays what is older than its claimIdle, at start and every reclaimInterval.
  const app = broker.app({ prefix, queues: ['default', 'other'] });
  define(app);
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const w = new Worker(app, { logger, promoteIntervalMs: 20, claimIdle: '1s' });
  await w.start();
  t.after(() => w.stop());
  assert.equal(await h.result({ timeout: '30s' }), 10);
  await Promise.all(logged.map((taskId) => app.waitForResult(taskId, { timeout: '20s' })));
  await until(async () => (await redis.xlen(outbox)) === 0, 10_000, 'the outbox to be empty');
  await until(
    () => lines.some((l) => l.includes('dropped a second copy of a task from the outbox')),
    10_000,
    'the second copy of the tick to be dropped',
  );
  assert.deepEqual(
    ran.sort(),
    ['part 1', 'part 2', 'part 3', 'part 4', ...logged.map((l) => `tock ${l}`).sort(), 'total'].sort(),
    'every member (but the one recorded before), the callback and each tick ran once, the tick published twice included',
  );
  assert.equal(await redis.xlen(producer.keys.outbox.key({ queue: 'other' })), 0);
});

test('rabbitmq: the first copy of an outbox task delivered claims it: its redeliveries run, another copy does not', async () => {
  const app = broker.app();
  const redis = await app.redis();
  const claim = (tag: string) => firstCopy(redis, app.keys, 'default', '1-pabc', tag, 60_000);
  assert.equal(await claim('1-0'), true, 'the first copy delivered');
  assert.equal(await claim('1-0'), true, 'the same copy, redelivered (its worker died)');
  assert.equal(await claim('1-0:relay'), false, 'a copy a relay published again');
  assert.equal(await claim('2-0'), false, 'a copy of a second outbox entry for the same task');
  assert.equal(await firstCopy(redis, app.keys, 'other', '1-pabc', '2-0', 60_000), true, 'per queue');
  const ttl = await redis.pttl(app.keys.outboxOnce.key({ queue: 'default', task: '1-pabc' }));
  assert.ok(ttl > 0 && ttl <= 60_000, `kept for the result TTL (${ttl} ms left)`);
});
