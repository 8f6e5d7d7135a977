/**
 * Seeds a Redis with good keys (written by a real worker, or built through the registry with their
 * TTLs) and bad ones (no TTL where one is declared, keys nobody declared, the incident's 10 KB key
 * names built from raw data, a value over its budget, a key of the wrong type, a left-over version).
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { Worker, type Tasuki } from '../../src/index.js';
import type { FindingKind } from '../../src/keys/audit.js';
import { silentLogger } from '../../src/log/logger.js';
import { encodeRecord } from '../../src/wire/record.js';
import type { declareShopKeys } from './fixtures/shop-keys.js';

export const DAY = 24 * 60 * 60 * 1000;

export interface Seeded {
  /** Every bad key and the finding kinds the audit must report for it, and nothing else. */
  expected: { kind: FindingKind; key: string }[];
  /** Name of the worker that ran the real tasks. */
  workerName: string;
  /** finishedAt of the oldest task record seeded (3 days ago, by worker `w-old`). */
  oldestAt: number;
  /** Task id local part whose idempotency key was seeded as two days old. */
  idemAt: number;
  /** The incident's raw upload data (10 KB) that went into two key names. */
  raw: string;
}

/** Keys built from raw data, as the incident's rate-limiting base class did. */
export function incidentKeys(raw: string): string[] {
  return [`${raw}-first_task_at`, `${raw}-count_tasks`];
}

/** The undeclared 2 MB hash of {@link seedGoodAndBad}. */
export const BLOB_KEY = 'uploads:raw:42';

/** A hash of two 1 MiB fields (MEMORY USAGE a little over 2 MiB), with no TTL unless `ttlMs`. */
export async function seedBlob(redis: Redis, key: string, ttlMs?: number): Promise<void> {
  const mib = 'B'.repeat(1024 * 1024);
  await redis.hset(key, { head: mib, tail: mib });
  if (ttlMs !== undefined) await redis.pexpire(key, ttlMs);
}

/** Good keys through the registry, with the TTLs their declarations give. */
export async function seedGood(
  redis: Redis,
  app: Tasuki,
  shop: ReturnType<typeof declareShopKeys>,
  now = Date.now(),
): Promise<{ oldestAt: number; idemAt: number }> {
  const k = app.keys;
  const oldestAt = now - 3 * DAY;
  const idemAt = now - 2 * DAY;
  const record = encodeRecord({
    state: 'succeeded',
    task: 'math.add',
    attempt: 1,
    worker: 'w-old',
    startedAt: oldestAt - 20,
    finishedAt: oldestAt,
    result: 3,
  });
  await redis.set(k.result.key({ queue: 'default', task: `${oldestAt - 100}-0` }), record, 'PX', 7 * DAY);
  await redis.set(
    k.idempotency.key({ queue: 'default', key: 'order-1234' }),
    `${idemAt}-0@default`,
    'PX',
    DAY,
  );
  // An hour, not the declared minute: the seed must outlive a slow test file on a loaded machine.
  await redis.set(shop.rate.key({ client: 'c1' }), '3', 'PX', 3_600_000);
  await redis.set(shop.rate.key({ client: 'c2' }), '7', 'PX', 3_600_000);
  // A session id from user data that is far too long for a key name: keyPart hashes it.
  await redis.hset(shop.session.key({ id: 'x'.repeat(5000) }), { user: 'ada' });
  await redis.pexpire(shop.session.key({ id: 'x'.repeat(5000) }), DAY);
  await redis.hset(shop.session.key({ id: 's1' }), { user: 'bob' });
  await redis.pexpire(shop.session.key({ id: 's1' }), DAY);
  await redis.sadd(shop.tenants.key({}), 'acme', 'globex');
  return { oldestAt, idemAt };
}

/** Runs two real tasks through a worker, so tasuki itself writes its keys (stream, results...). */
export async function runRealTasks(app: Tasuki, workerName: string): Promise<void> {
  const add = app.task({
    name: 'math.add',
    schema: z.object({ a: z.number(), b: z.number() }),
    handler: ({ a, b }) => a + b,
  });
  const worker = new Worker(app, { name: workerName, concurrency: 2, logger: silentLogger() });
  await worker.start();
  try {
    const one = await add.enqueue({ a: 1, b: 2 });
    const two = await add.enqueue({ a: 2, b: 3 }, { idempotencyKey: 'checkout-77' });
    await one.result({ timeout: '10s' });
    await two.result({ timeout: '10s' });
  } finally {
    await worker.stop();
  }
}

/** Good and bad keys; returns what the audit must find. */
export async function seedGoodAndBad(
  redis: Redis,
  app: Tasuki,
  shop: ReturnType<typeof declareShopKeys>,
): Promise<Seeded> {
  const workerName = 'w-seed';
  await runRealTasks(app, workerName);
  const { oldestAt, idemAt } = await seedGood(redis, app, shop);
  const prefix = app.keyspace.prefix;
  const expected: Seeded['expected'] = [];

  // No TTL although the declaration has one: this key would live forever.
  const noTtl = shop.rate.key({ client: 'c9' });
  await redis.set(noTtl, '1');
  expected.push({ kind: 'no-ttl', key: noTtl });

  // Nobody declared it (even with a TTL, nobody owns it); small and with a TTL, that is its only finding.
  await redis.set('legacy:cache:user:1', '{"name":"ada"}', 'PX', DAY);
  expected.push({ kind: 'unowned', key: 'legacy:cache:user:1' });

  // The incident: key names built from the raw upload (10 KB each), no TTL, no owner: three findings each.
  const raw = JSON.stringify({ file: 'report.csv', data: 'A'.repeat(10 * 1024) });
  const [first, count] = incidentKeys(raw) as [string, string];
  await redis.set(first, String(Date.now()));
  await redis.set(count, '1');
  for (const key of [first, count]) {
    expected.push({ kind: 'unowned', key }, { kind: 'no-ttl', key }, { kind: 'long-name', key });
  }

  // A 2 MB hash nobody declared, with no TTL: over the default budget of an undeclared key (1 MiB).
  await seedBlob(redis, BLOB_KEY);
  expected.push(
    { kind: 'unowned', key: BLOB_KEY },
    { kind: 'no-ttl', key: BLOB_KEY },
    { kind: 'over-budget', key: BLOB_KEY },
  );

  // A value over its budget (4096 bytes for a session), with its TTL.
  const big = shop.session.key({ id: 'big' });
  await redis.hset(big, { user: 'carol', cart: 'item,'.repeat(3000) });
  await redis.pexpire(big, DAY);
  expected.push({ kind: 'over-budget', key: big });

  // The wrong type under a declared name: a list where a counter string belongs.
  const wrong = shop.rate.key({ client: 'c7' });
  await redis.rpush(wrong, 'a', 'b');
  await redis.pexpire(wrong, 3_600_000);
  expected.push({ kind: 'wrong-type', key: wrong });

  // A left-over of a version nobody declares any more.
  const old = `${prefix}:v2:{q:default}:stream`;
  await redis.xadd(old, '*', 'm', '["x",{}]');
  expected.push({ kind: 'unowned', key: old }, { kind: 'no-ttl', key: old });

  return { expected, workerName, oldestAt, idemAt, raw };
}
