/**
 * `tasuki keys catalogue` and `tasuki keys audit` end to end: the CLI runs from the TypeScript
 * sources in a child process (test/keys/run-cli.ts), against this file's throw-away Redis.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AuditReport } from '../../src/keys/audit.js';
import type { CatalogueRow } from '../../src/keys/catalogue.js';
import { freePort } from '../../src/testing/index.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';
import { declareShopKeys } from './fixtures/shop-keys.js';
import { BLOB_KEY, DAY, incidentKeys, seedBlob, seedGood, seedGoodAndBad, type Seeded } from './seed.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const APP = 'test/keys/fixtures/shop-app.ts';
const server = useRedis();
const prefix = randomPrefix();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with a clean environment (never a REDIS_URL from outside). */
function cli(
  args: readonly string[],
  opts: {
    env?: Record<string, string>;
    onStderr?: (text: string, child: ReturnType<typeof spawn>) => void;
  } = {},
): Promise<Run> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    TASUKI_TEST_PREFIX: prefix,
    ...opts.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/keys/run-cli.ts', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    opts.onStderr?.(stderr, child);
  });
  return new Promise((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

let seeded: Seeded;
let seeding: Promise<void> | undefined;

/** Database 0 holds the good and bad keys of the shop app (prefix shared with the child's app). */
function ready(): Promise<void> {
  seeding ??= (async () => {
    const app = newApp(server(), { prefix });
    seeded = await seedGoodAndBad(server().client(), app, declareShopKeys(app.keyspace));
  })();
  return seeding;
}

const url = (db = 0): string => `redis://127.0.0.1:${server().port}/${db}`;

test('catalogue: tasuki keys as JSON, with the prefix', async () => {
  const r = await cli(['keys', 'catalogue', '--format', 'json', '--prefix', 'acme']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as CatalogueRow[];
  const stream = rows.find((x) => x.id === 'queue.stream');
  assert.equal(stream?.pattern, 'acme:v1:{q:<queue>}:stream');
  assert.equal(stream?.ttlMs, null);
  assert.match(stream?.noTtlReason ?? '', /lives as long as its queue/);
  const result = rows.find((x) => x.id === 'task.result');
  assert.equal(result?.ttlMs, 24 * 60 * 60 * 1000);
  assert.equal(result?.noTtlReason, null);
  for (const row of rows) {
    assert.match(row.owner, /^tasuki\//);
    assert.ok(row.ttlMs !== null || row.noTtlReason, `${row.id} has a TTL or says why not`);
    assert.ok(row.maxBytes > 0 && row.purpose && row.codec);
  }
  assert.ok(!rows.some((x) => x.owner.startsWith('shop')));
});

test("catalogue --app: the app's keys too, under the app's prefix", async () => {
  const r = await cli(['keys', 'catalogue', '--app', APP, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as CatalogueRow[];
  const session = rows.find((x) => x.id === 'shop.session');
  assert.deepEqual(session, {
    id: 'shop.session',
    pattern: `${prefix}:v2:session:<id>`,
    owner: 'shop/web',
    version: 2,
    type: 'hash',
    ttlMs: 86_400_000,
    noTtlReason: null,
    codec: 'hash of text fields',
    maxBytes: 4096,
    purpose: 'A signed-in session.',
  });
  assert.ok(rows.some((x) => x.pattern === `${prefix}:v1:{q:<queue>}:stream`));
  assert.ok(rows.some((x) => x.id === 'shop.tenants' && x.noTtlReason?.includes('admin tool')));
});

test('catalogue: table and Markdown', async () => {
  const table = await cli(['keys', 'catalogue', '--app', APP]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^KEY +OWNER +V +TYPE +TTL +CODEC +BUDGET +PURPOSE\n-+ /);
  assert.match(
    table.stdout,
    new RegExp(`${prefix}:v1:\\{rate:<client>\\}:count +shop/web +1 +string +1m +integer +128 B`),
  );
  const md = await cli(['keys', 'catalogue', '--format', 'markdown']);
  assert.equal(md.code, 0, md.stderr);
  assert.match(
    md.stdout,
    /^\| Key \| Owner \| Version \| Type \| TTL \| Codec \| Budget \| Purpose \|\n\| --- /,
  );
  assert.match(md.stdout, /\| `tsk:v1:\{q:<queue>\}:r:<task>` \| tasuki\/results \| 1 \| string \| 1d \|/);
});

test('catalogue: bad input is one clear line and exit 2', async () => {
  const missing = await cli(['keys', 'catalogue', '--app', 'nowhere/app.ts']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  assert.match(missing.stderr, /^tasuki: app module "nowhere\/app\.ts" not found/);
  const prefix = await cli(['keys', 'catalogue', '--prefix', 'a:b']);
  assert.equal(prefix.code, 2);
  assert.match(prefix.stderr, /^tasuki: key prefix "a:b" is invalid/);
  const clash = await cli(['keys', 'catalogue', '--app', APP, '--prefix', 'other']);
  assert.equal(clash.code, 2);
  assert.match(clash.stderr, /--prefix: "other" differs from the app's prefix/);
  const format = await cli(['keys', 'catalogue', '--format', 'yaml']);
  assert.notEqual(format.code, 0);
  assert.match(format.stderr, /Allowed choices are table, json, markdown/);
});

test('audit --fail-on no-ttl,unowned,oversize: exit 1 on the seeded Redis, JSON report of exactly the bad keys', async () => {
  await ready();
  const r = await cli([
    'keys',
    'audit',
    '--app',
    APP,
    '--url',
    url(),
    '--format',
    'json',
    '--full-names',
    '--count',
    '50',
    '--fail-on',
    'no-ttl,unowned,oversize',
  ]);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as AuditReport;
  assert.equal(report.complete, true);
  assert.deepEqual(
    report.findings.map((f) => `${f.kind} ${f.key}`).sort(),
    seeded.expected.map((e) => `${e.kind} ${e.key}`).sort(),
  );
  assert.match(r.stderr, /scanning redis:\/\/127\.0\.0\.1:\d+\/0 \(COUNT 50, pace 0 ms, read-only\)/);
  assert.match(r.stderr, /failing on unowned \(5\), no-ttl \(5\), over-budget \(2\), long-name \(2\)\n$/);
  assert.doesNotMatch(r.stderr, /\r/, 'no progress bar when stderr is not a terminal');
});

test('audit --fail-on picks the kinds that fail; the URL may come from TASUKI_REDIS_URL', async () => {
  await ready();
  const only = await cli(['keys', 'audit', '--app', APP, '--fail-on', 'wrong-type', '--format', 'json'], {
    env: { TASUKI_REDIS_URL: url() },
  });
  assert.equal(only.code, 1, only.stderr);
  assert.match(only.stderr, /failing on wrong-type \(1\)\n$/);
  const none = await cli(['keys', 'audit', '--app', APP, '--url', url()]);
  assert.equal(none.code, 0, 'findings without --fail-on are reported, not failed');
  const longNames = await cli([
    'keys',
    'audit',
    '--app',
    APP,
    '--url',
    url(),
    '--max-key-bytes',
    '100000',
    '--fail-on',
    'long-name',
  ]);
  assert.equal(longNames.code, 0, longNames.stderr);
});

test('audit --fail-on no-ttl,oversize fails on undeclared keys: a 2 MB hash without TTL and the 10 KB names', async () => {
  const client = server().client();
  await client.select(12);
  await seedBlob(client, BLOB_KEY);
  const [first, count] = incidentKeys(JSON.stringify({ data: 'A'.repeat(10 * 1024) })) as [string, string];
  await client.set(first, String(Date.now()));
  await client.set(count, '1');
  const r = await cli([
    'keys',
    'audit',
    '--url',
    url(12),
    '--format',
    'json',
    '--fail-on',
    'no-ttl,oversize',
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /failing on no-ttl \(3\), over-budget \(1\), long-name \(2\)\n$/);
  const report = JSON.parse(r.stdout) as AuditReport;
  assert.deepEqual(
    report.findings.filter((f) => f.key === BLOB_KEY).map((f) => f.kind),
    ['unowned', 'no-ttl', 'over-budget'],
  );
  assert.equal(report.settings.unownedMaxBytes, 1048576);
  // The 2 MB hash alone fails on its size; a larger budget for undeclared keys lets it pass.
  await client.select(13);
  await seedBlob(client, BLOB_KEY, DAY);
  const size = await cli(['keys', 'audit', '--url', url(13), '--fail-on', 'oversize']);
  assert.equal(size.code, 1, size.stderr);
  assert.match(size.stderr, /failing on over-budget \(1\)\n$/);
  assert.match(
    size.stdout,
    /\nover-budget +uploads:raw:42 +- +hash +23h 59m +2\.\d MiB +uses \d+ bytes; an undeclared key has the default budget\n +of 1048576 bytes/,
  );
  const roomy = await cli([
    'keys',
    'audit',
    '--url',
    url(13),
    '--unowned-max-bytes',
    String(4 * 1024 * 1024),
    '--fail-on',
    'oversize',
  ]);
  assert.equal(roomy.code, 0, roomy.stderr);
  const bad = await cli(['keys', 'audit', '--url', url(13), '--unowned-max-bytes', '0']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--unowned-max-bytes: "0" is not an integer >= 1/);
});

test('audit on a Redis with only good keys: --fail-on any exits 0', async () => {
  const app = newApp(server(), { prefix });
  const shop = declareShopKeys(app.keyspace);
  const client = server().client();
  await client.select(7);
  await seedGood(client, app, shop);
  const r = await cli([
    'keys',
    'audit',
    '--app',
    APP,
    '--url',
    url(7),
    '--fail-on',
    'any',
    '--format',
    'json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as AuditReport;
  assert.equal(report.scanned, 7);
  assert.deepEqual(report.findings, []);
});

test('audit table: findings, oldest keys with their writer, totals per owner', async () => {
  await ready();
  const r = await cli(['keys', 'audit', '--app', APP, '--url', url()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Audited \d+ keys of \d+ \(DBSIZE at start\) in /);
  assert.match(r.stdout, /Findings: 5 unowned, 5 no-ttl, 2 over-budget, 2 long-name, 1 wrong-type/);
  assert.match(r.stdout, /\nFINDINGS\nKIND +KEY +OWNER +TYPE +TTL +MEMORY +DETAIL\n/);
  assert.match(r.stdout, /\nlong-name +\{"file":"report\.csv","data":"A+ /);
  assert.match(r.stdout, /\n +A+… \(10\d\d\d bytes\) /, 'the 10 KB name is shortened');
  assert.ok(r.stdout.length < 20_000, 'and never printed in full');
  // Seeded 3 days before this file began: its earlier tests add seconds, or minutes on a loaded machine.
  assert.match(
    r.stdout,
    /\nOLDEST KEYS .*\nKEY +OWNER +AGE +BASIS +WRITER +WRITTEN AT\n-+.*\n\S+:r:\S+ +tasuki\/results +3d( \d+[sm])? +metadata +w-old +\d{4}-/,
  );
  assert.match(r.stdout, /\nPER OWNER\nOWNER +KEYS +MEMORY\n/);
  assert.match(r.stdout, /\(unowned\) +5 +2\.\d MiB\n/);
});

test('audit table on a Redis full of foreign keys: 20 findings per kind, the rest as families', async () => {
  const client = server().client();
  await client.select(9);
  const p = client.pipeline();
  for (let j = 0; j < 300; j++) p.set(`orders:${j}`, 'v');
  for (let j = 0; j < 40; j++) p.set(`cache:page:${j}:en`, 'v'.repeat(100));
  await p.exec();
  const r = await cli(['keys', 'audit', '--url', url(9), '--count', '1000']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.match(/^unowned /gm)?.length, 20);
  assert.equal(r.stdout.match(/^no-ttl /gm)?.length, 20, 'none of them has a TTL');
  assert.match(r.stdout, /… and 320 unowned, 320 no-ttl more \(all are in --format json/);
  assert.match(
    r.stdout,
    /\nUNOWNED KEY FAMILIES \(who writes these\?\)\nPATTERN +KEYS +MEMORY +EXAMPLE\n-+.*\norders:\* +300 +[\d.]+ KiB +orders:\d+\ncache:page:\*:en +40 /,
  );
});

test('Ctrl-C stops the audit cleanly, prints the partial report and exits 130', async () => {
  const client = server().client();
  await client.select(8);
  for (let i = 0; i < 3000; i += 500) {
    const p = client.pipeline();
    for (let j = i; j < i + 500; j++) p.set(`bulk:${j}`, 'v');
    await p.exec();
  }
  let sent = false;
  const r = await cli(
    ['keys', 'audit', '--url', url(8), '--count', '10', '--pace-ms', '20', '--format', 'json'],
    {
      onStderr: (text, child) => {
        if (!sent && text.includes('scanning')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    },
  );
  assert.equal(r.code, 130, r.stderr);
  const report = JSON.parse(r.stdout) as AuditReport;
  assert.equal(report.complete, false);
  assert.ok(report.scanned < 3000, `scanned ${report.scanned}`);
  assert.match(r.stderr, /stopping…/);
  assert.equal(await client.dbsize(), 3000, 'nothing written or deleted');
});

test('audit errors are one clear line and exit 2: bad --fail-on, no URL, unreachable Redis', async () => {
  const bad = await cli(['keys', 'audit', '--url', url(), '--fail-on', 'unowned,ttl']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^tasuki: invalid fail-on kinds: --fail-on: "ttl" is not a finding kind/);
  const huge = await cli(['keys', 'audit', '--url', url(), '--fail-on', 'x'.repeat(10_000)]);
  assert.equal(huge.code, 2);
  assert.match(huge.stderr, /^tasuki: invalid fail-on kinds: --fail-on: "x{79}… \(10002 characters\) is not/);
  assert.ok(huge.stderr.length < 400, `${huge.stderr.length} characters on stderr`);
  const nourl = await cli(['keys', 'audit']);
  assert.equal(nourl.code, 2);
  assert.match(
    nourl.stderr,
    /^tasuki: keys audit: no Redis URL: pass --url redis:\/\/host:6379 or set TASUKI_REDIS_URL/,
  );
  const port = await freePort();
  const down = await cli(['keys', 'audit', '--url', `redis://u:secret@127.0.0.1:${port}`]);
  assert.equal(down.code, 2);
  assert.equal(down.stderr.trim().split('\n').length, 1, down.stderr);
  assert.match(
    down.stderr,
    new RegExp(`^tasuki: cannot reach Redis at redis://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}`),
  );
  assert.doesNotMatch(down.stderr, /secret/);
  const count = await cli(['keys', 'audit', '--url', url(), '--count', '0']);
  assert.equal(count.code, 2);
  assert.match(count.stderr, /--count: "0" is not an integer >= 1/);
});
