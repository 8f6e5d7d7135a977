import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import {
  OptionsError,
  StaleTokenError,
  TasukiError,
  fencedUpdate,
  fencedUpsert,
  isDeadlockError,
  withDeadlockRetry,
} from '../../src/index.js';
import { TestPostgres } from '../../src/testing/postgres.js';
import { until } from '../support/redis.js';
import { track } from './helpers.js';

let db: TestPostgres;
let pool: pg.Pool;
before(async () => {
  // deadlock_timeout only applies to a throw-away cluster; with DATABASE_URL the default (1 s) is used.
  db = await TestPostgres.start({ settings: { deadlock_timeout: '100ms' } });
  pool = db.pool({ max: 6 });
});
after(async () => {
  await db.close();
});

let n = 0;
async function table(columns: string): Promise<string> {
  const name = `fenced_${process.pid}_${n++}`;
  await pool.query(`CREATE TABLE ${name} (${columns})`);
  return name;
}

async function bodyOf(t: string, id: number): Promise<string | undefined> {
  const r = await pool.query<{ body: string }>(`SELECT body FROM ${t} WHERE id = $1`, [id]);
  return r.rows[0]?.body;
}

test('fencedUpsert writes only with a strictly newer token', async () => {
  const t = await table('id int PRIMARY KEY, body text, fence bigint');
  await fencedUpsert(pool, { table: t, key: { id: 1 }, values: { body: 'first' }, token: 5n });
  await fencedUpsert(pool, { table: t, key: { id: 1 }, values: { body: 'second' }, token: 6n });
  for (const stale of [6n, 4n]) {
    await assert.rejects(
      fencedUpsert(pool, { table: t, key: { id: 1 }, values: { body: 'stale' }, token: stale }),
      (err: unknown) => {
        assert.ok(err instanceof StaleTokenError);
        assert.equal(err.code, 'E_STALE_TOKEN');
        assert.equal(err.current, 6n);
        assert.equal(err.token, stale);
        return true;
      },
    );
  }
  assert.equal(await bodyOf(t, 1), 'second');
  // Tokens are time-based (~1.8e15): beyond 32 bits, compared as bigint.
  await fencedUpsert(pool, {
    table: t,
    key: { id: 1 },
    values: { body: 'big' },
    token: 1_800_000_000_000_001n,
  });
  assert.equal(await bodyOf(t, 1), 'big');
});

test('fencedUpsert: composite keys, schema-qualified tables, another fence column, bad identifiers', async () => {
  const cells = `${db.schema}.cells`;
  await pool.query(`CREATE TABLE ${cells} (x int, y int, v text, writer bigint, PRIMARY KEY (x, y))`);
  const w = { table: cells, key: { x: 1, y: 2 }, fenceColumn: 'writer' };
  await fencedUpsert(pool, { ...w, values: { v: 'a' }, token: 1n });
  await fencedUpsert(pool, { ...w, values: { v: 'b' }, token: 2n });
  await assert.rejects(fencedUpsert(pool, { ...w, values: { v: 'c' }, token: 2n }), StaleTokenError);
  const r = await pool.query<{ v: string; writer: string }>(`SELECT v, writer FROM ${cells}`);
  assert.deepEqual(r.rows, [{ v: 'b', writer: '2' }]);
  await assert.rejects(
    fencedUpsert(pool, { table: 'cells; DROP TABLE x', key: { id: 1 }, values: {}, token: 1n }),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_OPTIONS',
  );
});

test('fencedUpdate: UPDATE ... WHERE fence < token; missing row is E_NOT_FOUND', async () => {
  const t = await table('id int PRIMARY KEY, body text, fence bigint');
  await pool.query(`INSERT INTO ${t} (id, body, fence) VALUES (1, 'seed', NULL)`);
  await fencedUpdate(pool, { table: t, key: { id: 1 }, values: { body: 'a' }, token: 10n });
  await assert.rejects(
    fencedUpdate(pool, { table: t, key: { id: 1 }, values: { body: 'b' }, token: 10n }),
    StaleTokenError,
  );
  await assert.rejects(
    fencedUpdate(pool, { table: t, key: { id: 2 }, values: { body: 'b' }, token: 11n }),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_NOT_FOUND',
  );
  assert.equal(await bodyOf(t, 1), 'a');
});

test('concurrent fenced writers serialize on the row: the older token loses even if it commits later', async () => {
  const t = await table('id int PRIMARY KEY, body text, fence bigint');
  await fencedUpsert(pool, { table: t, key: { id: 1 }, values: { body: 'seed' }, token: 1n });
  const newer = await pool.connect();
  const older = await pool.connect();
  try {
    await newer.query('BEGIN');
    await fencedUpsert(newer, { table: t, key: { id: 1 }, values: { body: 'newer' }, token: 20n });
    await older.query('BEGIN');
    const olderPid = (await older.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // Blocks on the row lock until `newer` commits, then re-checks against the committed token.
    const late = track(
      fencedUpsert(older, { table: t, key: { id: 1 }, values: { body: 'older' }, token: 19n }),
    );
    // PostgreSQL says when `older` is waiting for a lock (the row `newer` updated): then commit.
    let waiting: { wait_event_type: string | null; wait_event: string | null; state: string } | undefined;
    await until(
      async () => {
        const r = await pool.query<NonNullable<typeof waiting>>(
          'SELECT wait_event_type, wait_event, state FROM pg_stat_activity WHERE pid = $1',
          [olderPid],
        );
        waiting = r.rows[0];
        return waiting?.wait_event_type === 'Lock' || late.settled();
      },
      30_000, // a give-up bound only; it is a few ms
      'the older writer to wait on the row lock',
    );
    assert.equal(late.settled(), false, 'the older writer is blocked, not done');
    assert.equal(waiting?.wait_event_type, 'Lock', JSON.stringify(waiting));
    assert.equal(waiting?.state, 'active');
    await newer.query('COMMIT');
    await assert.rejects(late.promise, (err: unknown) => {
      assert.ok(err instanceof StaleTokenError);
      assert.equal(err.current, 20n, 'checked against the committed token');
      return true;
    });
    await older.query('ROLLBACK');
  } finally {
    newer.release();
    older.release();
  }
  assert.equal(await bodyOf(t, 1), 'newer');
});

test('withDeadlockRetry re-runs a transaction that hit a real PostgreSQL deadlock (40P01)', async () => {
  const t = await table('id int PRIMARY KEY, v int');
  await pool.query(`INSERT INTO ${t} VALUES (1, 0), (2, 0)`);
  // Both transactions take their first row, meet at the barrier, then want the other's row.
  let arrived = 0;
  let open: () => void = () => undefined;
  const barrier = new Promise<void>((r) => (open = r));
  const retried: unknown[] = [];
  const transfer = (first: number, second: number): Promise<number> =>
    withDeadlockRetry(
      async (attempt) => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          await c.query(`UPDATE ${t} SET v = v + 1 WHERE id = $1`, [first]);
          if (attempt === 1) {
            if (++arrived === 2) open();
            await barrier;
          }
          await c.query(`UPDATE ${t} SET v = v + 1 WHERE id = $1`, [second]);
          await c.query('COMMIT');
          return attempt;
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        } finally {
          c.release();
        }
      },
      { attempts: 3, backoffMs: 20, onRetry: (err) => retried.push(err) },
    );
  const attempts = await Promise.all([transfer(1, 2), transfer(2, 1)]);
  assert.deepEqual([...attempts].sort(), [1, 2], 'one ran once, the deadlock victim twice');
  assert.equal(retried.length, 1);
  assert.equal((retried[0] as { code?: string }).code, '40P01');
  const r = await pool.query<{ v: number }>(`SELECT v FROM ${t} ORDER BY id`);
  assert.deepEqual(
    r.rows.map((row) => row.v),
    [2, 2],
    'both transfers applied exactly once',
  );
});

test('withDeadlockRetry rethrows other errors at once and the last deadlock after `attempts`', async () => {
  let runs = 0;
  await assert.rejects(
    withDeadlockRetry(async () => {
      runs++;
      await pool.query('SELEC 1');
    }),
    (err: unknown) => (err as { code?: string }).code === '42601',
  );
  assert.equal(runs, 1, 'a syntax error is not retried');

  // Shaped like pg's and mysql2's errors: an Error with `code` / `errno`.
  const withFields = (fields: Record<string, unknown>): Error => Object.assign(new Error('db error'), fields);
  for (const err of [
    withFields({ code: '40001' }),
    withFields({ errno: 1213, code: 'ER_LOCK_DEADLOCK' }),
    new Error('x', { cause: { code: '40P01' } }),
  ]) {
    let count = 0;
    await assert.rejects(
      withDeadlockRetry(
        () => {
          count++;
          return Promise.reject(err);
        },
        { attempts: 3, backoffMs: 1 },
      ),
      (e: unknown) => e === err,
    );
    assert.equal(count, 3);
    assert.equal(isDeadlockError(err), true);
  }
  assert.equal(isDeadlockError(new Error('plain')), false);
  assert.equal(isDeadlockError({ errno: 1062 }), false);
});

test('withDeadlockRetry options: one OptionsError names every bad field and quotes its value', async () => {
  let runs = 0;
  const fn = (): Promise<void> => {
    runs++;
    return Promise.resolve();
  };
  await assert.rejects(
    withDeadlockRetry(fn, { attempts: 0, backoffMs: Number.NaN, onRetry: 'log', retries: 3 } as never),
    (err: unknown) => {
      assert.ok(err instanceof OptionsError);
      assert.equal(err.code, 'E_OPTIONS');
      assert.deepEqual(
        err.issues.map((i) => [i.path, i.message]),
        [
          ['attempts', '0 is not an integer >= 1'],
          ['backoffMs', 'NaN is not a number of ms >= 0'],
          ['onRetry', '"log" is not a function'],
          ['retries', 'unknown option'],
        ],
      );
      assert.match(err.message, /^invalid withDeadlockRetry options: attempts: 0 /);
      return true;
    },
  );
  await assert.rejects(withDeadlockRetry(fn, { backoffMs: -1 }), /backoffMs: -1 is not a number of ms >= 0/);
  await assert.rejects(withDeadlockRetry(fn, { attempts: 1.5 }), /attempts: 1\.5 is not an integer >= 1/);
  assert.equal(runs, 0, 'fn never ran with bad options');
  assert.equal(
    await withDeadlockRetry((attempt) => Promise.resolve(attempt), { attempts: 1, backoffMs: 0 }),
    1,
  );
});
