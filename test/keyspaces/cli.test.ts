/**
 * App keyspaces in `tasuki keys catalogue`, `keys audit` and `keys migrate`, end to end: the CLI
 * runs from the sources in a child process against this file's throw-away Redis.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import type { AuditReport } from '../../src/keys/audit.js';
import type { CatalogueRow } from '../../src/keys/catalogue.js';
import type { MigrateReport } from '../../src/keys/migrate.js';
import { defineKeyspace, parseEnvelope } from '../../src/index.js';
import { runCli } from '../support/cli.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';

const server = useRedis();
const APP = 'test/keyspaces/fixtures/profile-app.ts';

function cli(prefix: string, args: string[]) {
  return runCli(['keys', ...args, '--app', APP], { TASUKI_TEST_PREFIX: prefix, REDIS_URL: server().url });
}

/** 25 values written by the old code (format v1, JSON) and 5 by the new one (v2, msgpack). */
async function seed(prefix: string) {
  const v1App = newApp(server(), { prefix });
  const v1 = defineKeyspace(v1App, {
    owner: 'accounts',
    name: 'user.profile',
    version: 1,
    ttl: '1h',
    schema: z.object({ name: z.string() }),
    writer: 'web-old',
  });
  const v2App = newApp(server(), { prefix });
  const v2 = defineKeyspace(v2App, {
    owner: 'accounts',
    name: 'user.profile',
    version: 2,
    ttl: '1h',
    codec: 'msgpack',
    schema: z.object({ name: z.string(), plan: z.string() }),
    writer: 'web-new',
  });
  for (let i = 0; i < 25; i++) await v1.set(`u${i}`, { name: `user ${i}` });
  for (let i = 25; i < 30; i++) await v2.set(`u${i}`, { name: `user ${i}`, plan: 'pro' });
  const redis = await v1App.redis();
  await redis.persist(v1.key('u0')); // someone removed its TTL
  await v2.set('big', { name: 'x'.repeat(5000), plan: 'pro' }); // over the 1 KiB budget
  return { v1, v2, redis };
}

test('catalogue: app keyspaces, the cache and a sequence are listed like tasuki keys', async () => {
  const prefix = randomPrefix();
  const r = await cli(prefix, ['catalogue', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as CatalogueRow[];
  const profile = rows.find((x) => x.id === 'user.profile');
  assert.deepEqual(
    { ...profile },
    {
      id: 'user.profile',
      pattern: `${prefix}:v1:user.profile:<id>`,
      owner: 'accounts',
      version: 2,
      type: 'string',
      ttlMs: 3_600_000,
      noTtlReason: null,
      codec: 'msgpack in a tasuki envelope (format version, writer, written-at)',
      maxBytes: 1024,
      purpose: 'Profile of a signed-in user, for the web pages.',
    },
  );
  assert.ok(
    rows.some((x) => x.id === 'queue.stream'),
    "tasuki's own keys are there too",
  );
  assert.equal(rows.find((x) => x.id === 'cache')?.owner, 'web');
  assert.equal(rows.find((x) => x.id === 'cache.throttle')?.ttlMs, 86_400_000);
  assert.match(rows.find((x) => x.id === 'seq.order')?.noTtlReason ?? '', /outlive every id/);
  const table = await cli(prefix, ['catalogue']);
  assert.match(table.stdout, new RegExp(`${prefix}:v1:user\\.profile:<id>\\s+accounts\\s+2\\s+string\\s+1h`));
});

test('audit: owner, format versions, writer and written-at of app keys; no TTL and over budget are findings', async () => {
  const prefix = randomPrefix();
  const { v1 } = await seed(prefix);
  const r = await cli(prefix, ['audit', '--format', 'json', '--limit-oldest', '40', '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as AuditReport;
  const declared = report.declared.find((d) => d.id === 'user.profile');
  assert.deepEqual(
    { keys: declared?.keys, owner: declared?.owner, versions: declared?.versions, noTtl: declared?.noTtl },
    { keys: 31, owner: 'accounts', versions: { 1: 25, 2: 6 }, noTtl: 1 },
  );
  const noTtl = report.findings.filter((f) => f.kind === 'no-ttl');
  assert.deepEqual(
    noTtl.map((f) => [f.key, f.owner]),
    [[v1.key('u0'), 'accounts']],
  );
  const over = report.findings.filter((f) => f.kind === 'over-budget');
  assert.deepEqual(
    over.map((f) => f.id),
    ['user.profile'],
  );
  const old = report.oldest.find((o) => o.key === v1.key('u3'));
  assert.equal(old?.basis, 'metadata');
  assert.equal(old?.writer, 'web-old');
  assert.equal(old?.version, 1);
  assert.ok(old && old.createdAt !== null && Date.now() - old.createdAt < 600_000);
  assert.equal(report.oldest.find((o) => o.key === v1.key('u27'))?.writer, 'web-new');
  const table = await cli(prefix, ['audit', '--no-progress']);
  assert.match(table.stdout, /PER DECLARATION/);
  assert.match(table.stdout, /user\.profile\s+accounts\s+31\s+\S+ \S+\s+1\s+v1: 25, v2: 6/);
});

test('migrate: a dry run first, then paced and resumable rewrites in place that keep the TTL', async () => {
  const prefix = randomPrefix();
  const { v1, redis } = await seed(prefix);
  const dry = await cli(prefix, ['migrate', '--keyspace', 'user.profile', '--to', '2', '--format', 'json']);
  assert.equal(dry.code, 0, dry.stderr);
  const d = JSON.parse(dry.stdout) as MigrateReport;
  assert.deepEqual(
    [d.applied, d.complete, d.older, d.migrated, d.byVersion],
    [false, true, 25, 0, { 1: 25 }],
  );
  assert.equal(
    parseEnvelope((await redis.getBuffer(v1.key('u1'))) as Buffer)?.header.version,
    1,
    'dry run wrote nothing',
  );

  await redis.pexpire(v1.key('u1'), 900_000);
  const part = await cli(prefix, [
    'migrate',
    '--keyspace',
    'user.profile',
    '--to',
    '2',
    '--apply',
    '--count',
    '5',
    '--limit',
    '5',
    '--pace-ms',
    '5',
  ]);
  assert.equal(part.code, 3, part.stderr);
  const cursor = /resume with --cursor (\d+)/.exec(part.stdout)?.[1];
  assert.ok(cursor && cursor !== '0', part.stdout);
  const rest = await cli(prefix, [
    'migrate',
    '--keyspace',
    'user.profile',
    '--to',
    '2',
    '--apply',
    '--cursor',
    cursor,
  ]);
  assert.equal(rest.code, 0, rest.stderr);
  assert.match(rest.stdout, /complete/);
  const again = await cli(prefix, ['migrate', '--keyspace', 'user.profile', '--to', '2', '--format', 'json']);
  assert.equal((JSON.parse(again.stdout) as MigrateReport).older, 0, 'every old value was rewritten');
  const env = parseEnvelope((await redis.getBuffer(v1.key('u1'))) as Buffer);
  assert.deepEqual([env?.header.version, env?.header.codec], [2, 'msgpack']);
  const ttl = await redis.pttl(v1.key('u1'));
  assert.ok(ttl > 0 && ttl <= 900_000, `kept its remaining TTL (${ttl})`);
  const lost = await redis.pttl(v1.key('u0'));
  assert.ok(lost > 0 && lost <= 3_600_000, `a key that had lost its TTL got the declared one (${lost})`);

  const wrong = await cli(prefix, ['migrate', '--keyspace', 'user.profile', '--to', '3']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /can migrate to 2 only, not 3/);
  const unknown = await cli(prefix, ['migrate', '--keyspace', 'nope', '--to', '1']);
  assert.match(unknown.stderr, /not a keyspace of the app; it declares "user\.profile", "cache"/);
});
