// The payload store conformance suite (conformance.ts) against each store: a real temp directory, a
// real PostgreSQL (TestPostgres: a throw-away cluster, or DATABASE_URL).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import {
  FileSystemPayloadStore,
  PostgresPayloadStore,
  openPayloadStore,
  type PayloadStore,
} from '../../src/index.js';
import { TestPostgres } from '../../src/testing/postgres.js';
import { exercise } from './conformance.js';

const dirs: string[] = [];
const stores: PayloadStore[] = [];
let db: TestPostgres;
let pool: pg.Pool;
before(async () => {
  db = await TestPostgres.start();
  pool = db.pool({ max: 4 });
});
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await db.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tasuki-payloads-test-'));
  dirs.push(d);
  return d;
}

let tables = 0;
exercise('filesystem', () => Promise.resolve(new FileSystemPayloadStore(join(tempDir(), 'nested', 'dir'))));
exercise('filesystem (fsync)', () => Promise.resolve(new FileSystemPayloadStore(tempDir(), { fsync: true })));
exercise('postgres', () =>
  Promise.resolve(new PostgresPayloadStore({ pool, table: `payloads_${tables++}` })),
);
exercise('postgres (connection string)', () => {
  const s = openPayloadStore(db.url);
  stores.push(s);
  return Promise.resolve(s);
});

test('filesystem: a payload is one file named by its ref, its expiry the mtime; no temp file is left', async () => {
  const dir = tempDir();
  const store = new FileSystemPayloadStore(dir);
  const expiresAt = Date.now() + 7 * 86_400_000;
  await store.put({ ref: 'A'.repeat(22), data: Buffer.from('{"x":1}'), sha256: 'x'.repeat(64), expiresAt });
  assert.deepEqual(readdirSync(dir), ['A'.repeat(22)]);
  assert.ok(Math.abs(statSync(join(dir, 'A'.repeat(22))).mtimeMs - expiresAt) < 1000);
});

test('postgres: the table is made on first use, and by migrate() ahead of it', async () => {
  const store = new PostgresPayloadStore({ pool, table: 'first_use' });
  const exists = async (t: string): Promise<boolean> =>
    (await pool.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [t])).rows[0]?.t != null;
  assert.equal(await exists('first_use'), false);
  await store.put({
    ref: 'B'.repeat(22),
    data: Buffer.from('1'),
    sha256: 'x'.repeat(64),
    expiresAt: Date.now() + 1000,
  });
  assert.equal(await exists('first_use'), true);
  const migrated = new PostgresPayloadStore({ pool, table: 'migrated' });
  await migrated.migrate();
  assert.equal(await exists('migrated'), true);
  const cols = await pool.query(
    `SELECT column_name FROM information_schema.columns WHERE table_name = 'migrated' AND table_schema = $1 ORDER BY ordinal_position`,
    [db.schema],
  );
  assert.deepEqual(
    cols.rows.map((r: { column_name: string }) => r.column_name),
    ['ref', 'data', 'sha256', 'size', 'created_at', 'expires_at'],
  );
});

test('postgres: a bad table name or no database is a clear E_CONFIG error', () => {
  assert.throws(() => new PostgresPayloadStore({ pool, table: 'x; drop table y' }), /not a plain SQL name/);
  assert.throws(() => new PostgresPayloadStore({}), /takes \{ pool \}/);
});
