import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import {
  defineSequence,
  MySqlSequence,
  PostgresSequence,
  TasukiError,
  type Sequence,
} from '../../src/index.js';
import { TestMariaDb } from '../../src/testing/mariadb.js';
import { TestPostgres } from '../../src/testing/postgres.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';

const server = useRedis();
let pgdb: TestPostgres;
let pgPool: pg.Pool;
let mdb: TestMariaDb;
let myPool: mysql.Pool;
before(async () => {
  [pgdb, mdb] = await Promise.all([TestPostgres.start(), TestMariaDb.start()]);
  pgPool = pgdb.pool({ max: 8 });
  myPool = mdb.pool({ connectionLimit: 8 });
  await PostgresSequence.ensureTable(pgPool);
  await MySqlSequence.ensureTable(myPool);
});
after(async () => {
  await Promise.all([pgdb?.close(), mdb?.close()]);
});

/**
 * `callers` concurrent callers each take `rounds` allocations (single ids and batches in turn):
 * every id is unique and each caller sees its ids rise. Returns every id.
 */
async function contend(
  make: (caller: number) => Sequence,
  callers: number,
  rounds: number,
): Promise<bigint[]> {
  const perCaller = await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      const seq = make(c);
      const mine: bigint[] = [];
      for (let i = 0; i < rounds; i++) mine.push(...(i % 2 ? await seq.next(5) : [await seq.next()]));
      return mine;
    }),
  );
  for (const mine of perCaller) {
    for (let i = 1; i < mine.length; i++) assert.ok(mine[i]! > mine[i - 1]!, 'rising for each caller');
  }
  const all = perCaller.flat();
  assert.equal(new Set(all).size, all.length, 'unique across callers');
  return all;
}

test('Redis sequence: unique and rising under contention (8 connections); batches in one call', async () => {
  const prefix = randomPrefix();
  const apps = Array.from({ length: 8 }, () => newApp(server(), { prefix }));
  const seqs = apps.map((app) => defineSequence(app, { owner: 'shop', name: 'order' }));
  const all = await contend((c) => seqs[c]!, 8, 30);
  assert.equal(all.length, 8 * (15 + 15 * 5));
  const floor = BigInt(Date.now() - 60_000) * 1000n;
  assert.ok(
    all.every((id) => id > floor),
    'ids sit above the server clock in µs',
  );
  const batch = await seqs[0]!.next(1000);
  assert.equal(batch.length, 1000);
  assert.equal(batch[999]! - batch[0]!, 999n, 'a batch is contiguous');
  await assert.rejects(
    seqs[0]!.next(0),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_OPTIONS',
  );
  // Declared in the registry, without a TTL and with the reason why.
  const def = apps[0]!.keyspace.get('seq.order');
  assert.match(def?.spec.noTtlReason ?? '', /outlive every id/);
});

test('Redis sequence: a restart without persistence loses the counter, and ids still rise (clock floor); a plain counter starts again', async () => {
  const app = newApp(server());
  const seq = defineSequence(app, { owner: 'shop', name: 'invoice' });
  const plain = defineSequence(app, { owner: 'shop', name: 'plain', floor: 'none' });
  const before = [...(await seq.next(100)), await seq.next()];
  assert.deepEqual(await plain.next(3), [1n, 2n, 3n]);
  await server().restart({ kill: true }); // no AOF, no RDB: every key is gone
  const redis = await app.redis();
  assert.equal(await redis.exists(seq.key()), 0, 'the counter was lost');
  const afterIds = await seq.next(100);
  const maxBefore = before.reduce((a, b) => (b > a ? b : a));
  assert.ok(afterIds[0]! > maxBefore, `after the restart ${afterIds[0]} > ${maxBefore}: no id issued twice`);
  assert.equal(
    await plain.next(),
    1n,
    'floor: none starts again at 1 (documented: use it only with persistence)',
  );
});

test('Redis sequence: a failover to a replica that missed increments (counter set back) still issues new ids', async () => {
  const app = newApp(server());
  const seq = defineSequence(app, { owner: 'shop', name: 'ticket', maxAhead: 20 });
  const issued = await seq.next(5000); // 5000 ids within a 20 ms allowance: the caller waits as needed
  const last = issued[issued.length - 1]!;
  const redis = await app.redis();
  // The promoted replica has an older counter; a failover takes longer than maxAhead (20 ms).
  await redis.set(seq.key(), String(issued[0]! - 1n));
  await new Promise((r) => setTimeout(r, 25));
  const next = await seq.next();
  assert.ok(next > last, `${next} > ${last}`);
  await assert.rejects(seq.next(20_001), /1 to 20000/, 'a batch larger than maxAhead can never be issued');
});

test('PostgreSQL sequence: unique, rising and gapless under contention; rolled back with its transaction', async () => {
  const all = await contend(() => new PostgresSequence(pgPool, 'pg.order'), 8, 20);
  const sorted = [...all].sort((a, b) => (a < b ? -1 : 1));
  assert.deepEqual(
    sorted,
    Array.from({ length: all.length }, (_, i) => BigInt(i + 1)),
    'gapless from 1',
  );
  const c = await pgPool.connect();
  try {
    await c.query('BEGIN');
    const inTx = await new PostgresSequence(c, 'pg.order').next(10);
    assert.equal(inTx[0], BigInt(all.length + 1));
    await c.query('ROLLBACK');
  } finally {
    c.release();
  }
  assert.equal(
    await new PostgresSequence(pgPool, 'pg.order').next(),
    BigInt(all.length + 1),
    'no gap after a rollback',
  );
});

test('MariaDB sequence (LAST_INSERT_ID): unique, rising and gapless under contention; rolled back with its transaction', async () => {
  const all = await contend(() => new MySqlSequence(myPool, 'my.order'), 8, 20);
  const sorted = [...all].sort((a, b) => (a < b ? -1 : 1));
  assert.deepEqual(
    sorted,
    Array.from({ length: all.length }, (_, i) => BigInt(i + 1)),
    'gapless from 1',
  );
  const c = await myPool.getConnection();
  try {
    await c.query('START TRANSACTION');
    const inTx = await new MySqlSequence(c, 'my.order').next(10);
    assert.equal(inTx[0], BigInt(all.length + 1));
    await c.query('ROLLBACK');
  } finally {
    c.release();
  }
  assert.equal(
    await new MySqlSequence(myPool, 'my.order').next(),
    BigInt(all.length + 1),
    'no gap after a rollback',
  );
  assert.throws(
    () => new MySqlSequence(myPool, 'bad name; DROP'),
    (err: unknown) => err instanceof TasukiError,
  );
});
