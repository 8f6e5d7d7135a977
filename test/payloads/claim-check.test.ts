// The claim check end to end, on a real redis-server and real stores (a temp directory, a throw-away
// PostgreSQL): big arguments go to the store and the stream entry carries only {ref, sha256, size};
// the worker loads and verifies them; tasks are counted in and out.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { z } from 'zod';
import {
  FileSystemPayloadStore,
  PayloadTooLargeError,
  PostgresPayloadStore,
  TasukiError,
  Worker,
  type PayloadStore,
  type Tasuki,
} from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { TestPostgres } from '../../src/testing/postgres.js';
import { decodeMessage, type PayloadClaim } from '../../src/wire/message.js';
import { newApp, until, useRedis } from '../support/redis.js';
import { CountingStore, tempDir, tenKb } from './support.js';

const server = useRedis();
let db: TestPostgres;
let pool: pg.Pool;
before(async () => {
  db = await TestPostgres.start();
  pool = db.pool({ max: 4 });
});
after(async () => {
  await db.close();
});

let tables = 0;
const STORES = {
  filesystem: (): PayloadStore => new FileSystemPayloadStore(tempDir()),
  postgres: (): PayloadStore => new PostgresPayloadStore({ pool, table: `claims_${tables++}` }),
};

/** An app with a counted store, a task echoing a digest of its big argument, and a worker. */
function setup(inner: PayloadStore, options: Parameters<typeof newApp>[1] = {}) {
  const store = new CountingStore(inner);
  const app = newApp(server(), { queues: ['default', 'other'], payloads: { store }, ...options });
  const ran: string[] = [];
  let failFirst = 0;
  const echo = app.task({
    name: 'echo',
    schema: z.object({ n: z.number(), blob: z.string() }),
    maxAttempts: 2,
    backoff: { type: 'fixed', delay: 10 },
    handler: ({ n, blob }) => {
      ran.push(String(n));
      if (failFirst-- > 0) throw new Error('first attempt fails');
      return { n, size: blob.length, sha: createHash('sha256').update(blob).digest('hex') };
    },
  });
  const worker = (): Worker =>
    new Worker(app, { logger: silentLogger(), concurrency: 4, claimIdle: '2s', promoteIntervalMs: 20 });
  return { app, store, echo, ran, worker, failNext: (k: number) => (failFirst = k) };
}

/** The stream entries of a queue: field name, message, and the claim when it is one. */
async function entries(app: Tasuki, queue = 'default') {
  const raw = await server().client().xrange(app.keys.stream.key({ queue }), '-', '+');
  return raw.map(([id, fields]) => {
    const msg = decodeMessage(fields[1]);
    return { id, field: fields[0] as string, bytes: Buffer.byteLength(fields.join('')), claim: msg.claim };
  });
}

async function keysOf(app: Tasuki): Promise<string[]> {
  return server().client().keys(`${app.keys.space.prefix}:*`);
}

function digest(blob: string): string {
  return createHash('sha256').update(blob).digest('hex');
}

for (const [kind, make] of Object.entries(STORES)) {
  test(`${kind}: 10 KB arguments round-trip through the store; the stream holds only claims; payloads deleted after success`, async () => {
    const { app, store, echo, ran, worker } = setup(make());
    const single = await Promise.all(
      Array.from({ length: 10 }, (_, n) => echo.enqueue({ n, blob: tenKb(n) })),
    );
    const bulk = await echo.enqueueMany(
      Array.from({ length: 20 }, (_, i) => ({ args: { n: 10 + i, blob: tenKb(10 + i) } })),
    );
    assert.equal(store.calls.put, 10);
    assert.equal(store.calls.putMany, 1, 'bulk enqueue stores its payloads in one call');

    const waiting = await entries(app);
    assert.equal(waiting.length, 30);
    for (const e of waiting) {
      assert.equal(e.field, 'm2');
      assert.ok(e.claim, 'a claim, not arguments');
      assert.ok(e.claim.size > 10240 && e.claim.size < 10300, `claim size ${e.claim.size}`);
      assert.ok(e.bytes < 200, `stream entry is ${e.bytes} bytes`);
    }
    // The whole stream, fixed overhead included (its marginal cost per task is ~180 B; a 10 KB
    // argument inline costs ~12.8 KB).
    const stream = app.keys.stream.key({ queue: 'default' });
    const memory = Number(await server().client().memory('USAGE', stream, 'SAMPLES', 0));
    assert.ok(memory / 30 < 400, `stream holds ${memory} bytes for 30 tasks of 10 KB arguments`);
    const refs = waiting.map((e) => (e.claim as PayloadClaim).ref);
    for (const ref of refs) assert.ok(await store.inner.get(ref), 'payload in the store');

    const w = worker();
    await w.start();
    try {
      const results = await Promise.all([...single, ...bulk].map((h) => h.result({ timeout: '30s' })));
      results.forEach((r, n) => assert.deepEqual(r, { n, size: 10 * 1024, sha: digest(tenKb(n)) }));
      assert.equal(ran.length, 30, 'every task ran once');
      await until(
        async () => (await Promise.all(refs.map((r) => store.inner.get(r)))).every((b) => b === null),
        5000,
        'payloads deleted',
      );
    } finally {
      await w.stop();
    }
    assert.equal(w.counts.succeeded, 30);
    assert.equal((await entries(app)).length, 0);
  });
}

test('small arguments stay inline: format 1 in field "m", no store call at all', async () => {
  const { app, store, echo, worker } = setup(STORES.filesystem());
  const h = await echo.enqueue({ n: 1, blob: 'small' });
  await echo.enqueueMany([{ args: { n: 2, blob: 'x'.repeat(1000) } }]);
  const e = await entries(app);
  assert.deepEqual(
    e.map((x) => [x.field, x.claim]),
    [
      ['m', undefined],
      ['m', undefined],
    ],
  );
  const w = worker();
  await w.start();
  try {
    assert.equal(((await h.result({ timeout: '10s' })) as { size: number }).size, 5);
    await until(() => w.counts.succeeded === 2, 10_000, 'both ran');
  } finally {
    await w.stop();
  }
  assert.deepEqual(
    { ...store.calls, deleted: store.calls.deleted.length },
    { put: 0, putMany: 0, get: 0, delete: 0, deleted: 0 },
  );
});

test('the threshold is the app option, and a task may set its own', async () => {
  const { app, echo } = setup(STORES.filesystem(), {
    payloads: { store: STORES.filesystem(), threshold: 20_000 },
  });
  await echo.enqueue({ n: 1, blob: tenKb(1) });
  assert.equal((await entries(app))[0]?.field, 'm', 'under the app threshold: inline');
  const strict = app.task({
    name: 'strict',
    payloadThreshold: 10,
    schema: z.object({ s: z.string() }),
    handler: () => 1,
  });
  await strict.enqueue({ s: 'x'.repeat(20) });
  assert.equal((await entries(app))[1]?.field, 'm2', 'over the task threshold: claim-checked');
  assert.throws(
    () => app.task({ name: 'bad', payloadThreshold: -1, schema: z.object({}), handler: () => 1 }),
    /payloadThreshold/,
  );
});

test('a tampered payload is a dead letter "payload-mismatch"; the handler never sees it', async () => {
  const dir = tempDir();
  const { app, echo, ran, worker } = setup(new FileSystemPayloadStore(dir));
  const same = await echo.enqueue({ n: 1, blob: tenKb(1) });
  const shorter = await echo.enqueue({ n: 2, blob: tenKb(2) });
  const [a, b] = (await entries(app)).map((e) => e.claim as PayloadClaim);
  const file = join(dir, (a as PayloadClaim).ref);
  writeFileSync(file, readFileSync(file, 'utf8').replace('1:', '7:')); // same size, other bytes
  writeFileSync(join(dir, (b as PayloadClaim).ref), '{"n":2,"blob":"x"}');
  const w = worker();
  await w.start();
  try {
    await assert.rejects(same.result({ timeout: '10s' }), /do not match the message's claim: SHA-256/);
    await assert.rejects(
      shorter.result({ timeout: '10s' }),
      /do not match the message's claim: 18 bytes where the claim says/,
    );
  } finally {
    await w.stop();
  }
  assert.deepEqual(ran, []);
  const letters = await app.deadLetters.list('default');
  assert.deepEqual(
    letters.map((d) => [d.reason, d.error.code]),
    [
      ['payload-mismatch', 'E_PAYLOAD_MISMATCH'],
      ['payload-mismatch', 'E_PAYLOAD_MISMATCH'],
    ],
  );
  assert.equal(w.counts.failed, 2);
});

test('a missing payload is a dead letter "payload-missing", not a crash and not retried', async () => {
  const { app, store, echo, ran, worker } = setup(STORES.postgres());
  const h = await echo.enqueue({ n: 1, blob: tenKb(1) });
  const [claim] = (await entries(app)).map((e) => e.claim as PayloadClaim);
  await store.inner.delete([(claim as PayloadClaim).ref]);
  const w = worker();
  await w.start();
  try {
    await assert.rejects(h.result({ timeout: '10s' }), /are not in the payload store/);
  } finally {
    await w.stop();
  }
  assert.deepEqual(ran, []);
  const [letter] = await app.deadLetters.list('default');
  assert.equal(letter?.reason, 'payload-missing');
  assert.equal(letter?.attempts, 1, 'not retried: it could never run');
  // Purging the dead letter deletes its payload (here already gone: no error).
  assert.equal(await app.deadLetters.purge('default', { all: true }), 1);
});

test('no store and arguments over the inline limit: a typed error saying how to configure one; nothing in Redis', async () => {
  const app = newApp(server(), { payloads: { inlineLimit: 4096 } });
  const t = app.task({ name: 'big', schema: z.object({ blob: z.string() }), handler: () => 1 });
  await t.enqueue({ blob: 'x'.repeat(4000) }); // under: inline, as always
  await server()
    .client()
    .del(app.keys.stream.key({ queue: 'default' }));
  const check = (err: unknown): boolean => {
    assert.ok(err instanceof PayloadTooLargeError);
    assert.equal(err.code, 'E_PAYLOAD_TOO_LARGE');
    assert.equal(err.limit, 4096);
    assert.match(
      err.message,
      /no payload store.*payloads: \{ store: .*TASUKI_PAYLOAD_STORE.*Nothing was enqueued/,
    );
    return true;
  };
  await assert.rejects(t.enqueue({ blob: tenKb(1) }), check);
  await assert.rejects(t.enqueueMany([{ args: { blob: 'ok' } }, { args: { blob: tenKb(2) } }]), check);
  assert.deepEqual(await keysOf(app), []);
  // The default inline limit is 64 KiB: 10 KB still goes inline without a store.
  const plain = newApp(server());
  const p = plain.task({ name: 'p', schema: z.object({ blob: z.string() }), handler: () => 1 });
  await p.enqueue({ blob: tenKb(1) });
  assert.equal((await entries(plain))[0]?.field, 'm');
  await assert.rejects(p.enqueue({ blob: 'x'.repeat(70_000) }), PayloadTooLargeError);
});

test('a store that fails at enqueue: E_PAYLOAD_STORE, nothing in Redis; Redis refusing the message deletes the payload', async () => {
  const { app, store, echo } = setup(STORES.filesystem());
  store.down = true;
  await assert.rejects(echo.enqueue({ n: 1, blob: tenKb(1) }), (err: unknown) => {
    assert.ok(err instanceof TasukiError);
    assert.equal(err.code, 'E_PAYLOAD_STORE');
    assert.match(err.message, /nothing was written to Redis.*ECONNREFUSED/);
    return true;
  });
  await assert.rejects(
    echo.enqueueMany([{ args: { n: 1, blob: tenKb(1) } }]),
    /E_PAYLOAD_STORE|payload store said/,
  );
  assert.deepEqual(await keysOf(app), []);
  store.down = false;
  // A stream key of the wrong type: Redis refuses the XADD (WRONGTYPE) after the payload is written.
  await server()
    .client()
    .set(app.keys.stream.key({ queue: 'default' }), 'not a stream');
  await assert.rejects(echo.enqueue({ n: 2, blob: tenKb(2) }), /WRONGTYPE/);
  await assert.rejects(echo.enqueueMany([{ args: { n: 3, blob: tenKb(3) } }]), /WRONGTYPE/);
  assert.equal(store.calls.deleted.length, 2, 'both payloads deleted again');
  for (const ref of store.calls.deleted) assert.equal(await store.inner.get(ref), null);
});

test('a store down at the worker: the attempt is retried later, then runs once the store is back', async () => {
  const { app, store, echo, ran, worker } = setup(STORES.filesystem());
  const h = await echo.enqueue({ n: 1, blob: tenKb(1) });
  // The worker's load fails once, then the store is back (its retry comes 10 ms later: the test
  // must not have to flip the store in time).
  store.failing = 1;
  const w = worker();
  const retries: string[] = [];
  w.on('retried', (e) => retries.push(e.error?.message ?? ''));
  await w.start();
  try {
    assert.equal(((await h.result({ timeout: '20s' })) as { n: number }).n, 1);
  } finally {
    await w.stop();
  }
  assert.equal(retries.length, 1);
  assert.match(retries[0] ?? '', /payload store said.*ECONNREFUSED/);
  assert.equal((await app.getTask(h.id))?.attempt, 2);
  assert.deepEqual(ran, ['1']);
  assert.equal(await app.deadLetters.count('default'), 0);
});

test('delayed, retried and dead-letter-retried tasks keep their claim (Lua writes them to field m2)', async () => {
  const { app, store, echo, ran, worker, failNext } = setup(STORES.filesystem());
  failNext(1);
  const retried = await echo.enqueue({ n: 1, blob: tenKb(1) });
  const delayed = await echo.enqueue({ n: 2, blob: tenKb(2) }, { delay: 300 });
  const w = worker();
  await w.start();
  try {
    assert.equal(((await retried.result({ timeout: '20s' })) as { n: number }).n, 1);
    assert.equal(((await delayed.result({ timeout: '20s' })) as { n: number }).n, 2);
  } finally {
    await w.stop();
  }
  assert.deepEqual(ran.sort(), ['1', '1', '2'], 'the retry ran on the same 10 KB from the store');
  await until(() => store.calls.deleted.length === 2, 5000, 'both payloads deleted');

  // A dead letter keeps its payload: retried from the dead letters, it runs on it.
  const doomed = app.task({
    name: 'doomed',
    schema: z.object({ blob: z.string() }),
    handler: ({ blob }) => {
      if (ran.push('doomed') === 4) throw new Error('fails once');
      return blob.length;
    },
  });
  const d = await doomed.enqueue({ blob: tenKb(9) });
  const w2 = worker();
  await w2.start();
  try {
    await assert.rejects(d.result({ timeout: '10s' }), /fails once/);
    const [letter] = await app.deadLetters.list('default');
    assert.equal(letter?.reason, 'max-attempts');
    assert.deepEqual(await app.deadLetters.retry('default', { all: true }), { retried: 1, skipped: 0 });
    const raw = await server()
      .client()
      .xrange(app.keys.stream.key({ queue: 'default' }), '-', '+');
    assert.equal(raw.length === 0 || raw[0]?.[1][0] === 'm2', true);
    await until(
      async () => (await app.getTask(d.id))?.state === 'succeeded',
      10_000,
      'the retried dead letter',
    );
    assert.equal((await app.getTask(d.id))?.result, 10 * 1024);
  } finally {
    await w2.stop();
  }
});

test('purging a dead letter deletes its payload; gc deletes expired ones', async () => {
  const dir = tempDir();
  const { app, store, worker } = setup(new FileSystemPayloadStore(dir), {
    payloads: { store: new FileSystemPayloadStore(dir), ttl: 50 },
  });
  void store;
  const doomed = app.task({
    name: 'doomed',
    schema: z.object({ blob: z.string() }),
    handler: () => {
      throw new Error('no');
    },
  });
  const h = await doomed.enqueue({ blob: tenKb(1) });
  const [claim] = (await entries(app)).map((e) => e.claim as PayloadClaim);
  const w = worker();
  await w.start();
  try {
    await assert.rejects(h.result({ timeout: '10s' }), /no/);
  } finally {
    await w.stop();
  }
  const fs = new FileSystemPayloadStore(dir);
  assert.ok(await fs.get((claim as PayloadClaim).ref), 'a dead letter keeps its payload');
  assert.equal(await app.deadLetters.purge('default', { ids: [h.id] }), 1);
  assert.equal(await fs.get((claim as PayloadClaim).ref), null, 'purged with its dead letter');

  // ttl 50 ms: an orphan (say, from a producer that died) is gone after gc.
  await doomed.enqueue({ blob: tenKb(2) });
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(await app.gcPayloads(), 1);
  assert.equal(await app.gcPayloads(), 0);
  await assert.rejects(newApp(server()).gcPayloads(), /has no payload store/);
});

test('an idempotency key that names an earlier task does not leave a second payload behind', async () => {
  const { app, store, echo } = setup(STORES.filesystem());
  const a = await echo.enqueue({ n: 1, blob: tenKb(1) }, { idempotencyKey: 'once' });
  const b = await echo.enqueue({ n: 1, blob: tenKb(1) }, { idempotencyKey: 'once' });
  assert.equal(a.id, b.id);
  assert.equal(b.created, false);
  assert.equal(store.calls.put, 2);
  assert.equal(store.calls.deleted.length, 1);
  assert.equal((await entries(app)).length, 1);
});

test('a worker whose app has no store leaves a claim-checked task for others, then dead-letters it "no-payload-store"', async () => {
  const { app, echo } = setup(STORES.filesystem());
  const bare = newApp(server(), { prefix: app.keys.space.prefix, queues: ['default', 'other'] });
  bare.task({ name: 'echo', schema: z.object({}), handler: () => 1 });
  const w = new Worker(bare, {
    logger: silentLogger(),
    claimIdle: '200ms',
    reclaimInterval: '50ms',
    releaseFor: '3s',
  });
  // Started before the enqueue: releaseFor counts from the enqueue, and a start slower than that on
  // a loaded machine would dead-letter at the first attempt, with nothing left for others.
  await w.start();
  try {
    const h = await echo.enqueue({ n: 1, blob: tenKb(1) });
    await assert.rejects(h.result({ timeout: '15s' }), /this worker's app has none/);
  } finally {
    await w.stop();
  }
  assert.ok(w.counts.released >= 1, 'left for another worker first');
  assert.equal((await app.deadLetters.list('default'))[0]?.reason, 'no-payload-store');
});
