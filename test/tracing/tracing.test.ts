import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanKind, SpanStatusCode, type SpanOptions, type Tracer } from '@opentelemetry/api';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { traceTasks } from '../../src/tracing/index.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

interface Recorded {
  name: string;
  options: SpanOptions;
  status?: { code: SpanStatusCode; message?: string };
  exception?: { name?: string; message?: string };
  end?: unknown;
}

/** A tracer that keeps the spans it is asked for (the SDK's exporters are not this test's subject). */
function recordingTracer(): { tracer: Tracer; spans: Recorded[] } {
  const spans: Recorded[] = [];
  const tracer = {
    startSpan(name: string, options: SpanOptions = {}) {
      const r: Recorded = { name, options };
      spans.push(r);
      return {
        recordException: (e: { name?: string; message?: string }) => void (r.exception = e),
        setStatus: (s: { code: SpanStatusCode; message?: string }) => void (r.status = s),
        end: (t?: unknown) => void (r.end = t),
      };
    },
  } as unknown as Tracer;
  return { tracer, spans };
}

test('traceTasks: one CONSUMER span per attempt with its real times; failures carry the error', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const ok = app.task({ name: 'ok', queue: 'q', schema: z.object({}), handler: () => 1 });
  const bad = app.task({
    name: 'bad',
    queue: 'q',
    schema: z.object({}),
    handler: () => {
      throw new TypeError('wrong');
    },
  });
  const worker = new Worker(app);
  const { tracer, spans } = recordingTracer();
  const stop = traceTasks(worker, tracer);
  await worker.start();
  try {
    const h = await ok.enqueue({});
    await h.result();
    await assert.rejects((await bad.enqueue({})).result());
    await until(() => spans.length === 2, 5000, 'spans');
    const [s1, s2] = spans;
    assert.equal(s1?.name, 'tasuki run ok');
    assert.equal(s1?.options.kind, SpanKind.CONSUMER);
    assert.equal(s1?.options.attributes?.['messaging.message.id'], h.id);
    assert.equal(s1?.options.attributes?.['tasuki.outcome'], 'succeeded');
    assert.equal(typeof s1?.options.startTime, 'number');
    assert.ok((s1?.end as number) >= (s1?.options.startTime as number));
    assert.equal(s1?.status, undefined);
    assert.equal(s2?.name, 'tasuki run bad');
    assert.equal(s2?.options.attributes?.['tasuki.outcome'], 'dead');
    assert.deepEqual(s2?.status, { code: SpanStatusCode.ERROR, message: 'TypeError: wrong' });
    assert.equal(s2?.exception?.message, 'wrong');
    stop();
    assert.equal(worker.listening, false, 'stopping removes the listener: the worker builds no more events');
  } finally {
    await worker.stop();
  }
});
