/**
 * The audit at size, in small: it aggregates as it scans — the largest findings and the oldest keys
 * are kept up to their limits, every finding is counted, totals per declaration carry the format
 * versions — and it gives the same answer by its lean pipe and by client pipelines.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { auditKeys, defineKeyspace } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

test('audit keeps the largest findings and the oldest keys up to their limits, and counts them all', async () => {
  const app = newApp(server());
  const redis = server().client();
  await redis.select(3);
  const p = redis.pipeline();
  for (let i = 0; i < 20_000; i++) p.set(`legacy:item:${i}`, 'x'.repeat(i % 500));
  await p.exec();
  await redis.set('legacy:big', 'y'.repeat(100_000));
  const db3 = newApp(server(), { redis: `${server().url}/3`, prefix: app.keyspace.prefix });
  const ks = defineKeyspace(db3, { owner: 'o', name: 'thing', version: 1, ttl: '1h', schema: z.number() });
  for (let i = 0; i < 50; i++) await ks.set(String(i), i);
  const conn = await db3.redis();
  const report = await auditKeys(conn, db3.keyspace, { maxFindings: 25, limitOldest: 5, count: 500 });
  assert.equal(report.scanned, 20_051);
  assert.equal(report.counts.unowned, 20_001);
  assert.equal(report.counts['no-ttl'], 20_001);
  assert.equal(report.findings.length, 25);
  assert.equal(report.findingsOmitted, 2 * 20_001 - 25);
  assert.equal(report.findings[0]?.key, 'legacy:big', 'largest first');
  for (let i = 1; i < report.findings.length; i++) {
    assert.ok((report.findings[i - 1]?.bytes ?? 0) >= (report.findings[i]?.bytes ?? 0));
  }
  assert.equal(report.oldest.length, 5);
  const thing = report.declared.find((d) => d.id === 'thing');
  assert.deepEqual([thing?.keys, thing?.versions], [50, { 1: 50 }]);
  assert.deepEqual(
    report.unownedFamilies.map((f) => [f.pattern, f.keys]),
    [
      ['legacy:item:*', 20_000],
      ['legacy:big', 1],
    ],
  );
});

test('the same report by the lean pipe and by client pipelines (a Redis that refuses a second connection)', async () => {
  const app = newApp(server());
  const ks = defineKeyspace(app, { owner: 'o', name: 'same', version: 1, ttl: '1h', schema: z.string() });
  for (let i = 0; i < 30; i++) await ks.set(String(i), 'v'.repeat(i * 100));
  const conn = await app.redis();
  const match = `${app.keyspace.prefix}:*`;
  const piped = await auditKeys(conn, app.keyspace, { match, maxFindings: 100 });
  const admin = server().client();
  const clients = Number(((await admin.info('clients')).match(/connected_clients:(\d+)/) ?? [])[1]);
  await admin.config('SET', 'maxclients', String(clients));
  try {
    const fallback = await auditKeys(conn, app.keyspace, { match, maxFindings: 100 });
    const shape = (r: typeof piped) => ({
      scanned: r.scanned,
      counts: r.counts,
      findings: r.findings.map((f) => [f.kind, f.key, f.bytes]),
      declared: r.declared,
    });
    assert.deepEqual(shape(fallback), shape(piped));
  } finally {
    await admin.config('SET', 'maxclients', '10000');
  }
});
