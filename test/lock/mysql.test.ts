import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type mysql from 'mysql2/promise';
import {
  StaleTokenError,
  TasukiError,
  fencedUpdateMySql,
  fencedUpsertMySql,
  isDeadlockError,
  withDeadlockRetry,
} from '../../src/index.js';
import { TestMariaDb } from '../../src/testing/mariadb.js';
import { until } from '../support/redis.js';
import { track } from './helpers.js';

let db: TestMariaDb;
let pool: mysql.Pool;
before(async () => {
  db = await TestMariaDb.start();
  pool = db.pool({ connectionLimit: 6 });
});
after(async () => {
  await db.close();
});

let n = 0;
async function table(columns: string): Promise<string> {
  const name = `t_${process.pid}_${n++}`;
  await pool.query(`CREATE TABLE ${name} (${columns}) ENGINE=InnoDB`);
  return name;
}

async function bodyOf(t: string, id: number): Promise<string | undefined> {
  const [rows] = await pool.query(`SELECT body FROM ${t} WHERE id = ?`, [id]);
  return (rows as { body: string }[])[0]?.body;
}

test('MariaDB: fencedUpsertMySql writes only with a strictly newer token (bigint tokens too)', async () => {
  const t = await table('id INT PRIMARY KEY, body TEXT, fence BIGINT UNSIGNED');
  await fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'first' }, token: 5n });
  await fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'second' }, token: 6n });
  for (const stale of [6n, 4n]) {
    await assert.rejects(
      fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'stale' }, token: stale }),
      (err: unknown) => err instanceof StaleTokenError && err.current === 6n && err.token === stale,
    );
  }
  assert.equal(await bodyOf(t, 1), 'second');
  const big = 1_800_000_000_000_001n; // lock tokens are time-based (µs): beyond 32 bits
  await fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'big' }, token: big });
  await assert.rejects(
    fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'x' }, token: big }),
    StaleTokenError,
  );
  assert.equal(await bodyOf(t, 1), 'big');
  // A write that changes nothing but the token still counts (FOUND_ROWS or not).
  await fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'big' }, token: big + 1n });
  await assert.rejects(
    fencedUpsertMySql(pool, { table: 'x; DROP TABLE y', key: { id: 1 }, values: {}, token: 1n }),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_OPTIONS',
  );
});

test('MariaDB: fencedUpdateMySql needs the row; a stale token is refused', async () => {
  const t = await table('id INT PRIMARY KEY, body TEXT, fence BIGINT');
  await pool.query(`INSERT INTO ${t} (id, body, fence) VALUES (1, 'seed', NULL)`);
  await fencedUpdateMySql(pool, { table: t, key: { id: 1 }, values: { body: 'a' }, token: 10n });
  await assert.rejects(
    fencedUpdateMySql(pool, { table: t, key: { id: 1 }, values: { body: 'b' }, token: 10n }),
    StaleTokenError,
  );
  await assert.rejects(
    fencedUpdateMySql(pool, { table: t, key: { id: 2 }, values: { body: 'b' }, token: 11n }),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_NOT_FOUND',
  );
  assert.equal(await bodyOf(t, 1), 'a');
});

test('MariaDB: concurrent fenced writers serialize on the row; the older token loses even if it commits later', async () => {
  const t = await table('id INT PRIMARY KEY, body TEXT, fence BIGINT');
  await fencedUpsertMySql(pool, { table: t, key: { id: 1 }, values: { body: 'seed' }, token: 1n });
  const newer = await pool.getConnection();
  const older = await pool.getConnection();
  try {
    await newer.query('START TRANSACTION');
    await fencedUpsertMySql(newer, { table: t, key: { id: 1 }, values: { body: 'newer' }, token: 20n });
    await older.query('START TRANSACTION');
    const [[{ id: olderId }]] = (await older.query('SELECT CONNECTION_ID() AS id')) as unknown as [
      [{ id: number }],
    ];
    const late = track(
      fencedUpsertMySql(older, { table: t, key: { id: 1 }, values: { body: 'older' }, token: 19n }),
    );
    // The server says when `older` waits for the row lock `newer` holds: then commit.
    await until(
      async () => {
        const [rows] = await pool.query(
          'SELECT requesting_trx_id FROM information_schema.INNODB_LOCK_WAITS w JOIN information_schema.INNODB_TRX x ON x.trx_id = w.requesting_trx_id WHERE x.trx_mysql_thread_id = ?',
          [olderId],
        );
        return (rows as unknown[]).length > 0 || late.settled();
      },
      10_000,
      'the older writer to wait for the row lock',
    );
    await newer.query('COMMIT');
    await assert.rejects(late.promise, StaleTokenError);
    await older.query('ROLLBACK');
  } finally {
    newer.release();
    older.release();
  }
  assert.equal(await bodyOf(t, 1), 'newer');
});

test('MariaDB: withDeadlockRetry re-runs the victim of a real deadlock (error 1213)', async () => {
  const t = await table('id INT PRIMARY KEY, n INT NOT NULL');
  await pool.query(`INSERT INTO ${t} VALUES (1, 0), (2, 0)`);
  const a = await pool.getConnection();
  const b = await pool.getConnection();
  let firstDone = 0;
  let release!: () => void;
  const bothHoldOne = new Promise<void>((r) => (release = r));
  const retried: unknown[] = [];
  // Each transaction locks one row, waits until the other holds its row too, then wants the other's.
  const txn = (c: mysql.PoolConnection, first: number, second: number) => (attempt: number) =>
    (async () => {
      await c.query('START TRANSACTION');
      try {
        await c.query(`UPDATE ${t} SET n = n + 1 WHERE id = ?`, [first]);
        if (attempt === 1) {
          if (++firstDone === 2) release();
          await bothHoldOne;
        }
        await c.query(`UPDATE ${t} SET n = n + 1 WHERE id = ?`, [second]);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    })();
  const opts = { attempts: 3, backoffMs: 10, onRetry: (err: unknown) => retried.push(err) };
  try {
    await Promise.all([withDeadlockRetry(txn(a, 1, 2), opts), withDeadlockRetry(txn(b, 2, 1), opts)]);
  } finally {
    a.release();
    b.release();
  }
  assert.equal(retried.length, 1, 'exactly one victim, re-run once');
  const err = retried[0] as { errno?: number; code?: string };
  assert.equal(err.errno, 1213);
  assert.equal(err.code, 'ER_LOCK_DEADLOCK');
  assert.ok(isDeadlockError(err));
  const [rows] = await pool.query(`SELECT n FROM ${t} ORDER BY id`);
  assert.deepEqual(
    (rows as { n: number }[]).map((r) => r.n),
    [2, 2],
    'both transactions committed in the end',
  );
});

test('MariaDB: withDeadlockRetry re-runs a serialization failure (1020, innodb_snapshot_isolation)', async () => {
  const t = await table('id INT PRIMARY KEY, n INT NOT NULL');
  await pool.query(`INSERT INTO ${t} VALUES (1, 0)`);
  const c = await pool.getConnection();
  const retried: unknown[] = [];
  try {
    await c.query('SET SESSION innodb_snapshot_isolation = ON');
    await withDeadlockRetry(
      async (attempt) => {
        await c.query('START TRANSACTION');
        try {
          const [rows] = await c.query(`SELECT n FROM ${t} WHERE id = 1`);
          const seen = (rows as { n: number }[])[0]?.n ?? 0;
          // Another client changes the row after this transaction's snapshot (first attempt only).
          if (attempt === 1) await pool.query(`UPDATE ${t} SET n = n + 100 WHERE id = 1`);
          await c.query(`UPDATE ${t} SET n = ? WHERE id = 1`, [seen + 1]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      },
      { attempts: 3, backoffMs: 10, onRetry: (err) => retried.push(err) },
    );
  } finally {
    c.release();
  }
  assert.equal(retried.length, 1);
  assert.equal((retried[0] as { errno?: number }).errno, 1020);
  const [rows] = await pool.query(`SELECT n FROM ${t} WHERE id = 1`);
  assert.equal((rows as { n: number }[])[0]?.n, 101, 'the re-run read the other write: no lost update');
});
