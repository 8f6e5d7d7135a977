// The broker conformance suite (./suite.ts) on RabbitMQ, then what only RabbitMQ has: its own
// dead-lettering (the quorum queue's delivery limit) and channels that close under running tasks.
// One throw-away node for the file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection, ConsumerStatus } from 'rabbitmq-client';
import { z } from 'zod';
import { DELIVERY_LIMIT, queueName } from '../../src/broker/rabbitmq-topology.js';
import { TaskFailedError, Worker } from '../../src/index.js';
import { freePort } from '../../src/testing/index.js';
import { silentLogger } from '../../src/log/logger.js';
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
