// `tasuki payloads gc|migrate` driven end to end: the CLI from the sources as a child process, on a
// real directory and a real PostgreSQL; and the cases that must fail with a clear message.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { FileSystemPayloadStore } from '../../src/index.js';
import { TestPostgres } from '../../src/testing/postgres.js';
import { runCli } from '../support/cli.js';
import { tempDir } from './support.js';

let db: TestPostgres;
before(async () => {
  db = await TestPostgres.start();
});
after(async () => {
  await db.close();
});

async function seed(dir: string): Promise<void> {
  const store = new FileSystemPayloadStore(dir);
  const p = (ref: string, expiresAt: number) => ({
    ref,
    data: Buffer.from('{}'),
    sha256: 'x'.repeat(64),
    expiresAt,
  });
  await store.putMany([
    p('E'.repeat(22), Date.now() - 1000),
    p('F'.repeat(22), Date.now() - 1),
    p('L'.repeat(22), Date.now() + 3_600_000),
  ]);
}

test('payloads gc --store <dir> deletes the expired payloads and says how many', async () => {
  const dir = tempDir();
  await seed(dir);
  const run = await runCli(['payloads', 'gc', '--store', dir]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^deleted 2 expired payloads \(filesystem .+\)\n$/);
  assert.deepEqual(readdirSync(dir), ['L'.repeat(22)]);
  const json = await runCli(['payloads', 'gc', '--json'], { TASUKI_PAYLOAD_STORE: dir });
  assert.equal(json.code, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as { deleted: number }).deleted, 0);
});

test("payloads gc --app uses the app's store (here from TASUKI_PAYLOAD_STORE)", async () => {
  const dir = tempDir();
  await seed(dir);
  const run = await runCli(['payloads', 'gc', '--app', 'test/fixtures/app.ts', '--json'], {
    TASUKI_PAYLOAD_STORE: dir,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { deleted: number }).deleted, 2);
});

test('payloads migrate --store postgres://... creates the table, and again is no error', async () => {
  for (let i = 0; i < 2; i++) {
    const run = await runCli(['payloads', 'migrate', '--store', db.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^migrated postgres table tasuki_payloads\n$/);
  }
  const pool = db.pool();
  const { rows } = await pool.query<{ t: string | null }>(`SELECT to_regclass('tasuki_payloads')::text AS t`);
  assert.equal(rows[0]?.t, 'tasuki_payloads');
});

test('payloads without a store, or with both --app and --store: exit 2 and what to do', async () => {
  const none = await runCli(['payloads', 'gc'], { TASUKI_PAYLOAD_STORE: '' });
  assert.equal(none.code, 2);
  assert.match(
    none.stderr,
    /^tasuki: which payload store\? Pass --app <module>, --store <directory \| postgres:\/\/\.\.\.>, or set TASUKI_PAYLOAD_STORE\n$/,
  );
  const app = await runCli(['payloads', 'migrate', '--app', 'test/fixtures/app.ts'], {
    TASUKI_PAYLOAD_STORE: '',
  });
  assert.equal(app.code, 2);
  assert.match(app.stderr, /has no payload store/);
  const both = await runCli(['payloads', 'gc', '--app', 'test/fixtures/app.ts', '--store', '/tmp/x']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give --app or --store, not both/);
});
