// The claim check for results (issue 11, point 2, first half): a result over the threshold is kept
// in the payload store and its record in Redis carries only the claim; `result()` and `getTask()`
// load it. Real redis-server, real directory.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { FileSystemPayloadStore, Worker, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { decodeRecord } from '../../src/wire/record.js';
import { newApp, useRedis } from '../support/redis.js';
import { CountingStore, tempDir, tenKb } from './support.js';

const server = useRedis();

function setup(options: Parameters<typeof newApp>[1] = {}) {
  const store = new CountingStore(new FileSystemPayloadStore(tempDir()));
  const app = newApp(server(), { payloads: { store }, ...options });
  const report = app.task({
    name: 'report',
    schema: z.object({ n: z.number(), big: z.boolean() }),
    handler: ({ n, big }) => ({ n, text: big ? tenKb(n) : 'short' }),
  });
  const worker = new Worker(app, { logger: silentLogger(), concurrency: 4 });
  return { app, store, report, worker };
}

async function recordBytes(app: Tasuki, id: string): Promise<{ bytes: number; raw: string }> {
  const [local, queue] = id.split('@') as [string, string];
  const raw =
    (await server()
      .client()
      .get(app.keys.result.key({ queue, task: local }))) ?? '';
  return { bytes: Buffer.byteLength(raw), raw };
}

test('a 10 KB result is kept in the store; the record in Redis holds its claim; result() and getTask() load it', async () => {
  const { app, store, report, worker } = setup();
  await worker.start();
  try {
    const handles = await Promise.all(Array.from({ length: 10 }, (_, n) => report.enqueue({ n, big: true })));
    const results = await Promise.all(handles.map((h) => h.result({ timeout: '20s' })));
    results.forEach((r, n) => assert.deepEqual(r, { n, text: tenKb(n) }));
    assert.equal(store.calls.put, 10, 'one put per big result; the small arguments stayed inline');
    for (const [n, h] of handles.entries()) {
      const { bytes, raw } = await recordBytes(app, h.id);
      assert.ok(bytes < 400, `record of ${bytes} bytes`);
      const r = decodeRecord(raw);
      assert.equal(r.result, undefined);
      assert.equal(r.resultClaim?.size, Buffer.byteLength(JSON.stringify({ n, text: tenKb(n) })));
      const info = await app.getTask(h.id);
      assert.equal(info?.state, 'succeeded');
      assert.deepEqual(info?.result, { n, text: tenKb(n) });
      assert.equal(info && 'resultClaim' in info, false, 'getTask hides the claim');
    }
  } finally {
    await worker.stop();
  }
});

test('small results stay in the record, with no store call', async () => {
  const { app, store, report, worker } = setup();
  await worker.start();
  try {
    const h = await report.enqueue({ n: 1, big: false });
    assert.deepEqual(await h.result({ timeout: '10s' }), { n: 1, text: 'short' });
    assert.equal(decodeRecord((await recordBytes(app, h.id)).raw).resultClaim, undefined);
  } finally {
    await worker.stop();
  }
  assert.deepEqual([store.calls.put, store.calls.get], [0, 0]);
});

test('a big result whose payload is gone rejects with E_PAYLOAD_MISSING; without a store, it stays in Redis', async () => {
  const { store, report, worker } = setup();
  await worker.start();
  try {
    const h = await report.enqueue({ n: 2, big: true });
    await h.result({ timeout: '10s' });
    await store.gc(Date.now() + 2 * 86_400_000); // past the result TTL (24 h)
    await assert.rejects(
      h.result({ timeout: '10s' }),
      (err: unknown) => (err as { code?: string }).code === 'E_PAYLOAD_MISSING',
    );
  } finally {
    await worker.stop();
  }

  const plain = newApp(server());
  const t = plain.task({ name: 'big', schema: z.object({}), handler: () => tenKb(3) });
  const w = new Worker(plain, { logger: silentLogger() });
  await w.start();
  try {
    const h = await t.enqueue({});
    assert.equal(await h.result({ timeout: '10s' }), tenKb(3));
    assert.ok(
      (await recordBytes(plain, h.id)).bytes > 10_000,
      'no store: the result is in the record, as before',
    );
  } finally {
    await w.stop();
  }
});
