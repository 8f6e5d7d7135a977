/**
 * The dashboard's live feed is fed by task events (one shared app subscription) and stays small
 * whatever the tasks return: a 5 MB result reaches pages as a short event, never as the value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Worker } from '../../src/index.js';
import { serveDashboard } from '../../src/dashboard/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('live feed: a task with a 5 MB result is pushed as a short event (no result), as soon as it finishes', async () => {
  const app = newApp(server(), { queues: ['q'] });
  const big = app.task({
    name: 'big',
    queue: 'q',
    schema: z.object({}),
    handler: () => 'x'.repeat(5 * 1024 * 1024),
  });
  const served = await serveDashboard(app, { port: 0 });
  const worker = new Worker(app);
  await worker.start();
  const abort = new AbortController();
  try {
    const res = await fetch(`${served.url}api/events`, { signal: abort.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    let bytes = 0;
    const until = async (pattern: RegExp): Promise<void> => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text.slice(0, 500)}`);
        bytes += value.byteLength;
        text += decoder.decode(value, { stream: true });
      }
    };
    await until(/event: overview/);
    const before = bytes;
    const h = await big.enqueue({});
    const t0 = performance.now();
    await h.result();
    const line = new RegExp(`event: task\\ndata: (.*"id":"${h.id}".*)\\n`);
    await until(line);
    const pushedMs = performance.now() - t0;
    const data = JSON.parse(line.exec(text)?.[1] as string) as { event: Record<string, unknown> };
    assert.equal(data.event.type, 'succeeded');
    assert.equal('result' in data.event, false);
    assert.ok(bytes - before < 20_000, `the feed sent ${bytes - before} bytes for a 5 MB result`);
    assert.ok(pushedMs < 2000, `pushed ${pushedMs} ms after the result was stored`);
  } finally {
    abort.abort();
    await worker.stop();
    await served.close();
  }
});
