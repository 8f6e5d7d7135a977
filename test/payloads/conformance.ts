// One conformance suite for every payload store (River's Exercise() pattern): stores.test.ts runs it
// against the filesystem and the PostgreSQL store, each on a real directory or database.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { NewPayload, PayloadStore } from '../../src/index.js';

function payload(text: string, expiresAt = Date.now() + 3_600_000): NewPayload {
  return {
    ref: randomBytes(16).toString('base64url'),
    data: Buffer.from(text),
    sha256: 'x'.repeat(64),
    expiresAt,
  };
}

/** Registers the suite's tests for a store made by `make` (called once per test). */
export function exercise(kind: string, make: () => Promise<PayloadStore>): void {
  test(`${kind}: put, get and delete round-trip the bytes; a missing ref is null`, async () => {
    const store = await make();
    const big = payload(JSON.stringify({ blob: 'é'.repeat(5000) }));
    await store.put(big);
    assert.deepEqual(await store.get(big.ref), big.data);
    assert.equal(await store.get(randomBytes(16).toString('base64url')), null);
    assert.equal(await store.delete([big.ref]), 1);
    assert.equal(await store.get(big.ref), null);
    assert.equal(await store.delete([big.ref]), 0, 'deleting again is no error');
    assert.equal(await store.delete([]), 0);
  });

  test(`${kind}: putMany keeps every payload of a batch`, async () => {
    const store = await make();
    const batch = Array.from({ length: 100 }, (_, i) => payload(`{"i":${i}}`));
    await store.putMany(batch);
    const got = await Promise.all(batch.map((p) => store.get(p.ref)));
    assert.deepEqual(
      got.map((b) => b?.toString()),
      batch.map((p) => p.data.toString()),
    );
    assert.equal(await store.delete(batch.map((p) => p.ref)), 100);
  });

  test(`${kind}: gc deletes expired payloads only, and counts them`, async () => {
    const store = await make();
    const now = Date.now();
    const expired = [payload('"a"', now - 1000), payload('"b"', now - 1)];
    const live = payload('"c"', now + 60_000);
    await store.putMany([...expired, live]);
    assert.equal(await store.gc(now), 2);
    for (const p of expired) assert.equal(await store.get(p.ref), null);
    assert.equal((await store.get(live.ref))?.toString(), '"c"');
    assert.equal(await store.gc(now), 0);
    assert.equal(await store.gc(now + 120_000), 1, 'a later gc takes the rest');
  });

  test(`${kind}: migrate is idempotent; a ref that is not one is refused, never used as a path`, async () => {
    const store = await make();
    await store.migrate();
    await store.migrate();
    for (const ref of ['../../etc/passwd', 'short', '', 'a/b'.repeat(10)]) {
      await assert.rejects(store.get(ref), /is not a payload ref/);
      await assert.rejects(store.put({ ...payload('1'), ref }), /is not a payload ref/);
    }
    assert.ok(store.description.length > 0);
  });
}
