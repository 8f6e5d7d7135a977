/**
 * OpenTelemetry spans of enqueues and runs through a real SDK (in-memory exporter, AsyncLocalStorage
 * context): the PRODUCER span and the trace context in the message, the CONSUMER run span as its
 * child (or linked, for a bulk enqueue), the handler's spans nested, retries in the same trace, the
 * context crossing from a producer process to a worker through Redis, bad context ignored, and an
 * untraced app writing and making nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { z } from 'zod';
import { TaskArgsError, Worker, type Tasuki } from '../../src/index.js';
import { openTelemetry } from '../../src/tracing/index.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';
import { startTracing, type SpanJson, type TestTracing } from './otel.js';

const server = useRedis();
let otel: TestTracing;
before(() => {
  otel = startTracing();
});
after(() => otel.close());
beforeEach(() => otel.exporter.reset());

/** The raw messages waiting in a queue's stream, in order. */
async function rawMessages(app: Tasuki, queue: string): Promise<string[]> {
  const redis = server().client();
  try {
    const entries = await redis.xrange(app.keys.stream.key({ queue }), '-', '+');
    return entries.map(([, fields]) => fields[1] as string);
  } finally {
    redis.disconnect();
  }
}

/** Runs `fn` in an active span named `name` (what a traced HTTP request would be). */
function inSpan<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return trace.getTracer('test').startActiveSpan(name, async (span) => {
    try {
      return await fn();
    } finally {
      span.end();
    }
  });
}

async function withWorker(app: Tasuki, fn: () => Promise<void>): Promise<void> {
  const worker = new Worker(app, { promoteIntervalMs: 20 });
  await worker.start();
  try {
    await fn();
  } finally {
    await worker.stop();
  }
}

test('enqueue is a PRODUCER span in the caller’s trace; each run a CONSUMER child of it, a retry too; the handler’s spans nest', async () => {
  const app = newApp(server(), { queues: ['q'], tracing: openTelemetry() });
  let tries = 0;
  const work = app.task({
    name: 'work',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 10 },
    handler: ({ n }) =>
      trace.getTracer('app').startActiveSpan('handler step', async (span) => {
        try {
          await sleep(1); // the context must survive an await inside the handler
          if (tries++ === 0) throw new Error('first try fails');
          return n * 2;
        } finally {
          span.end();
        }
      }),
  });
  const handle = await inSpan('request', () => work.enqueue({ n: 21 }));
  const [request] = otel.spans('request');
  const [producer] = otel.spans('tasuki enqueue work');
  assert.ok(request && producer);
  assert.equal(producer.kind, SpanKind.PRODUCER);
  assert.equal(producer.spanContext().traceId, request.spanContext().traceId);
  assert.equal(producer.parentSpanContext?.spanId, request.spanContext().spanId);
  assert.equal(producer.attributes['messaging.message.id'], handle.id);
  assert.equal(producer.attributes['messaging.destination.name'], 'q');
  assert.equal(producer.attributes['messaging.operation.type'], 'send');
  const { traceId, spanId } = producer.spanContext();
  assert.deepEqual(await rawMessages(app, 'q'), [`["work",{"n":21},{"tp":"00-${traceId}-${spanId}-01"}]`]);

  await withWorker(app, async () => assert.equal(await handle.result({ timeout: '20s' }), 42));
  const runs = otel.spans('tasuki run work');
  assert.deepEqual(
    runs.map((s) => [s.kind, s.attributes['tasuki.attempt'], s.attributes['tasuki.outcome'], s.status.code]),
    [
      [SpanKind.CONSUMER, 1, 'retried', SpanStatusCode.ERROR],
      [SpanKind.CONSUMER, 2, 'succeeded', SpanStatusCode.UNSET],
    ],
  );
  for (const run of runs) {
    assert.equal(run.spanContext().traceId, traceId, 'the run is in the producer’s trace');
    assert.equal(run.parentSpanContext?.spanId, spanId, 'a child of the enqueue span');
    assert.equal(run.attributes['messaging.message.id'], handle.id);
    assert.equal(run.attributes['messaging.operation.type'], 'process');
    assert.deepEqual(run.links, []);
  }
  assert.equal(runs[0]?.events[0]?.attributes?.['exception.message'], 'first try fails');
  const steps = otel.spans('handler step');
  assert.equal(steps.length, 2);
  steps.forEach((step, i) => {
    assert.equal(step.parentSpanContext?.spanId, runs[i]?.spanContext().spanId, 'nested in its run span');
    assert.equal(step.spanContext().traceId, traceId);
  });
});

test('bulk enqueue: one PRODUCER span for the batch; each run starts its own trace with a link to it', async () => {
  const app = newApp(server(), { queues: ['q'], tracing: openTelemetry() });
  const work = app.task({
    name: 'bulk',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => n,
  });
  const handles = await work.enqueueMany([1, 2, 3].map((n) => ({ args: { n } })));
  const producers = otel.spans('tasuki enqueue bulk');
  assert.equal(producers.length, 1);
  const producer = producers[0];
  assert.ok(producer);
  assert.equal(producer.attributes['messaging.batch.message_count'], 3);
  assert.equal(producer.attributes['messaging.destination.name'], 'q');
  const { traceId, spanId } = producer.spanContext();
  const tl = `"tl":"00-${traceId}-${spanId}-01"`;
  assert.deepEqual(
    await rawMessages(app, 'q'),
    [1, 2, 3].map((n) => `["bulk",{"n":${n}},{${tl}}]`),
  );

  await withWorker(app, async () => {
    assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '20s' }))), [1, 2, 3]);
  });
  const runs = otel.spans('tasuki run bulk');
  assert.deepEqual(
    runs.map((r) => r.attributes['messaging.message.id']).sort(),
    handles.map((h) => h.id).sort(),
  );
  for (const run of runs) {
    assert.equal(run.parentSpanContext, undefined, 'a root span');
    assert.notEqual(run.spanContext().traceId, traceId);
    assert.deepEqual(
      run.links.map((l) => [l.context.traceId, l.context.spanId]),
      [[traceId, spanId]],
    );
  }
});

test('delayed and idempotent enqueues carry the context through their scripts; the runs are children', async () => {
  const app = newApp(server(), { queues: ['q'], tracing: openTelemetry() });
  const work = app.task({
    name: 'later',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => n,
  });
  const delayed = await work.enqueue({ n: 1 }, { delay: 50 });
  const unique = await work.enqueue({ n: 2 }, { idempotencyKey: 'once' });
  const producers = otel.spans('tasuki enqueue later');
  assert.deepEqual(
    producers.map((p) => p.attributes['messaging.message.id']),
    [delayed.id, unique.id],
  );
  await withWorker(app, async () => {
    assert.equal(await delayed.result({ timeout: '20s' }), 1);
    assert.equal(await unique.result({ timeout: '20s' }), 2);
  });
  const runs = otel.spans('tasuki run later');
  for (const [i, h] of [delayed, unique].entries()) {
    const run = runs.find((r) => r.attributes['messaging.message.id'] === h.id);
    assert.equal(run?.parentSpanContext?.spanId, producers[i]?.spanContext().spanId);
    assert.equal(run?.spanContext().traceId, producers[i]?.spanContext().traceId);
  }
});

test('across processes: the run in this process is a child of the enqueue span of a producer process', async () => {
  const prefix = randomPrefix();
  const file = fileURLToPath(new URL('./fixtures/producer.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
    env: { ...process.env, REDIS_URL: server().url, PREFIX: prefix },
    timeout: 60_000,
  });
  const produced = JSON.parse(stdout.trim()) as { id: string; spans: SpanJson[] };
  const request = produced.spans.find((s) => s.name === 'request');
  const producer = produced.spans.find((s) => s.name === 'tasuki enqueue cross');
  assert.ok(request && producer);
  assert.equal(producer.parentSpanId, request.spanId);
  assert.equal(producer.attributes['messaging.message.id'], produced.id);

  const app = newApp(server(), { prefix, queues: ['q'], tracing: openTelemetry() });
  app.task({ name: 'cross', queue: 'q', schema: z.object({ n: z.number() }), handler: ({ n }) => n + 1 });
  await withWorker(app, async () =>
    assert.equal(await app.waitForResult(produced.id, { timeout: '20s' }), 2),
  );
  const [run] = otel.spans('tasuki run cross');
  assert.ok(run);
  assert.equal(run.spanContext().traceId, request.traceId, 'one trace from the request to the run');
  assert.equal(run.parentSpanContext?.spanId, producer.spanId);
  assert.equal(run.parentSpanContext?.isRemote, true);
});

test('a message’s bad trace context is ignored (a root run span, the task runs); tracestate is carried', async () => {
  const app = newApp(server(), { queues: ['q'], tracing: openTelemetry() });
  app.task({ name: 'hand', queue: 'q', schema: z.object({}), handler: () => 'ran' });
  const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const redis = server().client();
  const stream = app.keys.stream.key({ queue: 'q' });
  const ids = [
    await redis.xadd(stream, '*', 'm', '["hand",{},{"tp":"not a traceparent"}]'),
    await redis.xadd(stream, '*', 'm', `["hand",{},{"tp":"ff-${good.slice(3)}"}]`),
    await redis.xadd(stream, '*', 'm', `["hand",{},{"tp":"${good}","ts":"vendor=abc,other=1"}]`),
  ];
  redis.disconnect();
  await withWorker(app, async () => {
    for (const id of ids)
      assert.equal(await app.waitForResult(`${id as string}@q`, { timeout: '20s' }), 'ran');
  });
  const runs = otel.spans('tasuki run hand');
  const byId = new Map(runs.map((r) => [r.attributes['messaging.message.id'], r]));
  for (const id of ids.slice(0, 2)) {
    const run = byId.get(`${id as string}@q`);
    assert.equal(run?.parentSpanContext, undefined, 'a malformed or version-ff traceparent: a root span');
    assert.equal(run?.attributes['tasuki.outcome'], 'succeeded');
  }
  const child = byId.get(`${ids[2] as string}@q`);
  assert.equal(child?.spanContext().traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(child?.parentSpanContext?.spanId, '00f067aa0ba902b7');
  assert.equal(child?.parentSpanContext?.traceState?.get('vendor'), 'abc');
});

test('a refused enqueue ends its span with the error, which reaches the caller unchanged', async () => {
  const app = newApp(server(), { queues: ['q'], tracing: openTelemetry() });
  const work = app.task({
    name: 'strict',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: () => 0,
  });
  await assert.rejects(work.enqueue({ n: 'one' } as unknown as { n: number }), TaskArgsError);
  await assert.rejects(work.enqueueMany([{ args: { n: 'one' } as unknown as { n: number } }]), TaskArgsError);
  const spans = [...otel.spans('tasuki enqueue strict')];
  assert.equal(spans.length, 2);
  for (const s of spans) {
    assert.equal(s.status.code, SpanStatusCode.ERROR);
    assert.match(s.status.message ?? '', /TaskArgsError/);
  }
  assert.deepEqual(await rawMessages(app, 'q'), [], 'nothing written');
});

test('untraced (no tracing option): not a byte in the message, no span, and no @opentelemetry import below tasuki/tracing', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const plain = app.task({
    name: 'plain',
    queue: 'q',
    schema: z.object({ n: z.number() }),
    handler: ({ n }) => n,
  });
  const handle = await inSpan('request', () => plain.enqueue({ n: 1 }));
  const [bulk] = await plain.enqueueMany([{ args: { n: 2 } }]);
  assert.deepEqual(await rawMessages(app, 'q'), ['["plain",{"n":1}]', '["plain",{"n":2}]']);
  await withWorker(app, async () => {
    assert.equal(await handle.result({ timeout: '20s' }), 1);
    assert.equal(await bulk?.result({ timeout: '20s' }), 2);
  });
  assert.deepEqual(
    otel.exporter.getFinishedSpans().map((s) => s.name),
    ['request'],
    'a global provider is registered, and still the app makes no span',
  );
  // The OpenTelemetry API is loaded only by tasuki/tracing: the rest of tasuki never imports it.
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  const importers = (readdirSync(src, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.startsWith(`tracing`))
    .filter((f) => /from '@opentelemetry\//.test(readFileSync(join(src, f), 'utf8')));
  assert.deepEqual(importers, []);
});
