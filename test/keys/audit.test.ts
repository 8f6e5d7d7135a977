import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { connect, EmbeddedRedis, tasukiKeys, TasukiError } from '../../src/index.js';
import { familyOf } from '../../src/keys/findings.js';
import {
  auditKeys,
  failingKinds,
  parseFailOn,
  TASUKI_CREATION_READERS,
  type AuditReport,
} from '../../src/keys/audit.js';
import { newApp, randomPrefix, useRedis } from '../support/redis.js';
import { declareShopKeys } from './fixtures/shop-keys.js';
import { seedGood, seedGoodAndBad, type Seeded } from './seed.js';

const server = useRedis();

/** A connection to database `db` of the test server, like the CLI opens one. */
async function open(db: number, auth = ''): Promise<Redis> {
  return connect({
    url: `redis://${auth}127.0.0.1:${server().port}/${db}`,
    startAttempts: 2,
    redisOptions: { enableReadyCheck: false },
  });
}

let seeded: Seeded;
let app: ReturnType<typeof newApp>;
let seeding: Promise<void> | undefined;

/**
 * Database 0: a worker's real keys plus good and bad seeded ones, seeded once for the file (the
 * server starts in a hook, so this runs from the first test). Other tests use other databases.
 */
function ready(): Promise<void> {
  seeding ??= (async () => {
    app = newApp(server(), { prefix: randomPrefix() });
    const shop = declareShopKeys(app.keyspace);
    seeded = await seedGoodAndBad(server().client(), app, shop);
  })();
  return seeding;
}

const pairs = (r: AuditReport): string[] => r.findings.map((f) => `${f.kind} ${f.key}`).sort();

test('finds exactly the bad keys: no TTL, unowned, 10 KB names, over budget, wrong type', async () => {
  await ready();
  const redis = await open(0);
  try {
    const report = await auditKeys(redis, app.keyspace, { count: 7, fullNames: true });
    assert.equal(report.complete, true);
    assert.deepEqual(pairs(report), seeded.expected.map((e) => `${e.kind} ${e.key}`).sort());
    assert.deepEqual(report.counts, {
      unowned: 4,
      'no-ttl': 1,
      'over-budget': 1,
      'long-name': 2,
      'wrong-type': 1,
    });
    assert.equal(report.scanned, await redis.dbsize(), 'every key inspected once');
    assert.equal(report.totalKeys, report.scanned);
    // The findings say what is wrong and what to do.
    const byKind = (k: string) => report.findings.find((f) => f.kind === k);
    assert.match(byKind('no-ttl')?.detail ?? '', /"shop\.rate" is declared with a TTL of 60000 ms/);
    assert.match(byKind('over-budget')?.detail ?? '', /budget of 4096 bytes/);
    assert.match(byKind('long-name')?.detail ?? '', /key name is 10\d\d\d bytes \(limit 256\)/);
    const leftover = report.findings.find((f) => f.kind === 'unowned' && f.key.includes(':v2:{q:'));
    assert.match(leftover?.detail ?? '', /looks like "queue\.stream" but version v2 \(declared: v1\)/);
  } finally {
    redis.disconnect();
  }
});

test('shortens long key names unless asked for full names', async () => {
  await ready();
  const redis = await open(0);
  try {
    const report = await auditKeys(redis, app.keyspace, { match: '{"file"*' });
    assert.equal(report.scanned, 2);
    for (const f of report.findings) {
      assert.ok(f.key.length < 120, f.key);
      assert.match(f.key, /^\{"file":"report\.csv".*… \(10\d\d\d bytes\)$/);
      assert.ok(f.keyBytes > 10_000);
    }
  } finally {
    redis.disconnect();
  }
});

test('a longer key-name limit and the app keyspace change what is reported', async () => {
  await ready();
  const redis = await open(0);
  try {
    const wide = await auditKeys(redis, app.keyspace, { maxKeyBytes: 64 * 1024 });
    assert.equal(wide.counts['long-name'], 0);
    // Without the app's declarations, the shop's keys have no owner.
    const tasukiOnly = await auditKeys(redis, tasukiKeys(app.keyspace.prefix).space);
    assert.ok(tasukiOnly.counts.unowned > 4);
    assert.ok(tasukiOnly.findings.some((f) => f.kind === 'unowned' && f.key.includes('session:')));
  } finally {
    redis.disconnect();
  }
});

test('oldest keys: creation time and writer from task records, else idle time as a lower bound', async () => {
  await ready();
  const redis = await open(0);
  try {
    const report = await auditKeys(redis, app.keyspace, { limitOldest: 50 });
    const [first, second] = report.oldest;
    assert.equal(first?.basis, 'metadata');
    assert.equal(first?.id, 'task.result');
    assert.equal(first?.writer, 'w-old');
    assert.equal(first?.createdAt, seeded.oldestAt);
    assert.match(first?.source ?? '', /finishedAt/);
    assert.equal(second?.id, 'task.idempotency');
    assert.equal(second?.createdAt, seeded.idemAt);
    // The records the worker wrote name it and carry a recent finish time.
    const real = report.oldest.filter((o) => o.id === 'task.result' && o.writer === seeded.workerName);
    assert.equal(real.length, 2);
    for (const o of real) assert.ok(o.ageMs < 60_000 && (o.createdAt ?? 0) > Date.now() - 60_000);
    // Keys without metadata get an idle-time age and say it is a lower bound.
    const idle = report.oldest.filter((o) => o.basis === 'idle');
    assert.ok(idle.length > 0);
    for (const o of idle) assert.match(o.source, /lower bound/);
    const ages = report.oldest.map((o) => o.ageMs);
    assert.deepEqual(
      ages,
      [...ages].sort((a, b) => b - a),
    );
    const three = await auditKeys(redis, app.keyspace, { limitOldest: 3 });
    assert.equal(three.oldest.length, 3);
  } finally {
    redis.disconnect();
  }
});

test('totals per owner: keys and bytes, with unowned keys together', async () => {
  await ready();
  const redis = await open(0);
  try {
    const report = await auditKeys(redis, app.keyspace);
    const owners = new Map(report.owners.map((o) => [o.owner, o]));
    assert.equal(owners.get('(unowned)')?.keys, 4);
    assert.ok((owners.get('(unowned)')?.bytes ?? 0) > 20_000, 'the two 10 KB names alone');
    assert.equal(owners.get('shop/web')?.keys, 7);
    assert.equal(owners.get('shop/admin')?.keys, 1);
    assert.equal(owners.get('tasuki/worker')?.keys, 1, 'the queues set');
    assert.ok((owners.get('tasuki/results')?.keys ?? 0) >= 3, 'results and the events stream');
    const sum = report.owners.reduce((n, o) => n + o.keys, 0);
    assert.equal(sum, report.scanned);
    assert.deepEqual(
      report.owners.map((o) => o.bytes),
      report.owners.map((o) => o.bytes).sort((a, b) => b - a),
    );
  } finally {
    redis.disconnect();
  }
});

test('unowned keys are grouped into families by the shape of their names', async () => {
  await ready();
  const redis = await open(0);
  try {
    const report = await auditKeys(redis, app.keyspace);
    const families = new Map(report.unownedFamilies.map((f) => [f.pattern, f]));
    assert.equal(families.get('(long names)')?.keys, 2);
    assert.ok((families.get('(long names)')?.bytes ?? 0) > 20_000);
    assert.equal(families.get('legacy:cache:user:*')?.keys, 1);
    assert.equal(families.get('legacy:cache:user:*')?.example, 'legacy:cache:user:1');
    assert.equal(
      report.unownedFamilies.reduce((n, f) => n + f.keys, 0),
      report.counts.unowned,
    );
  } finally {
    redis.disconnect();
  }
  assert.equal(familyOf('k:556', 5, 256), 'k:*');
  assert.equal(familyOf('cache:views:home:en', 19, 256), 'cache:views:home:en');
  assert.equal(familyOf('a:b:c:d:e:f', 11, 256), 'a:b:c:d:*');
  assert.equal(familyOf('sess:1:2:3', 10, 256), 'sess:*');
  assert.equal(familyOf('x'.repeat(300), 300, 256), '(long names)');
});

test('a Redis holding only good keys has no findings', async () => {
  await ready();
  const redis = await open(6);
  try {
    const db6 = newApp(server(), { prefix: randomPrefix() });
    const shop6 = declareShopKeys(db6.keyspace);
    await seedGood(redis, db6, shop6);
    const report = await auditKeys(redis, db6.keyspace);
    assert.equal(report.scanned, 7);
    assert.deepEqual(report.findings, []);
    assert.deepEqual(failingKinds(report, parseFailOn('any')), []);
  } finally {
    redis.disconnect();
  }
});

test('read-only: runs as an ACL user allowed only SCAN, TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME, GETRANGE', async () => {
  await ready();
  const admin = server().client();
  await admin.call(
    'ACL',
    'SETUSER',
    'auditor',
    'reset',
    'on',
    '>auditpw',
    '~*',
    '+scan',
    '+type',
    '+pttl',
    '+memory|usage',
    '+object|idletime',
    '+getrange',
    '+dbsize',
    '+client|setname',
    '+select',
  );
  const redis = await open(0, 'auditor:auditpw@');
  try {
    const report = await auditKeys(redis, app.keyspace, { fullNames: true });
    assert.deepEqual(pairs(report), seeded.expected.map((e) => `${e.kind} ${e.key}`).sort());
    assert.ok(report.oldest.some((o) => o.basis === 'metadata'));
    // The same user cannot write, so the audit above cannot have written either.
    await assert.rejects(redis.set('x', '1'), /NOPERM/);
    await assert.rejects(redis.call('KEYS', '*'), /NOPERM/);
  } finally {
    redis.disconnect();
  }
});

test('a refused command is a clear E_REDIS error that lists the commands the audit needs', async () => {
  await ready();
  const admin = server().client();
  await admin.call(
    'ACL',
    'SETUSER',
    'noscan',
    'reset',
    'on',
    '>pw',
    '~*',
    '+type',
    '+client|setname',
    '+select',
  );
  const redis = await open(0, 'noscan:pw@');
  try {
    await assert.rejects(auditKeys(redis, app.keyspace), (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_REDIS');
      assert.match(
        err.message,
        /key audit: SCAN failed: Redis said "NOPERM.*needs these read-only commands: SCAN, TYPE/,
      );
      return true;
    });
  } finally {
    redis.disconnect();
  }
});

test('under an LFU policy idle time is not tracked: ages come from metadata only, with a note', async () => {
  await ready();
  const admin = server().client();
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lfu');
  const redis = await open(0);
  try {
    const report = await auditKeys(redis, app.keyspace);
    assert.equal(report.counts.unowned, 4);
    assert.ok(report.oldest.length > 0 && report.oldest.every((o) => o.basis === 'metadata'));
    assert.ok(report.notes.some((n) => /idle time unavailable/.test(n)));
  } finally {
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    redis.disconnect();
  }
});

test('paced: sleeps between SCAN batches; bounded COUNT', async () => {
  await ready();
  const redis = await open(4);
  try {
    for (let i = 0; i < 200; i += 50) {
      const p = redis.pipeline();
      for (let j = i; j < i + 50; j++) p.set(`paced:${j}`, '1', 'PX', 60_000);
      await p.exec();
    }
    let batches = 0;
    const started = Date.now();
    const report = await auditKeys(redis, tasukiKeys('x').space, {
      count: 20,
      paceMs: 25,
      onProgress: () => batches++,
    });
    const took = Date.now() - started;
    assert.equal(report.scanned, 200);
    assert.ok(batches >= 5, `${batches} batches of ~20 keys`);
    assert.ok(took >= (batches - 1) * 25, `${took} ms for ${batches} batches`);
    assert.deepEqual(report.settings, { count: 20, paceMs: 25, match: null, maxKeyBytes: 256 });
  } finally {
    redis.disconnect();
  }
});

test('cancellable: an abort stops at the next step and returns a partial report', async () => {
  await ready();
  const redis = await open(5);
  try {
    for (let i = 0; i < 3000; i += 500) {
      const p = redis.pipeline();
      for (let j = i; j < i + 500; j++) p.set(`many:${j}`, '1');
      await p.exec();
    }
    const controller = new AbortController();
    const report = await auditKeys(redis, tasukiKeys('x').space, {
      count: 10,
      paceMs: 5,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.scanned >= 50) controller.abort();
      },
    });
    assert.equal(report.complete, false);
    assert.ok(report.scanned >= 50 && report.scanned < 3000, `scanned ${report.scanned}`);
    assert.equal(report.counts.unowned, report.scanned);
    assert.ok(report.notes.some((n) => /cancelled after \d+ keys/.test(n)));
    // Already aborted: returns at once with nothing scanned.
    const none = await auditKeys(redis, tasukiKeys('x').space, { signal: AbortSignal.abort() });
    assert.equal(none.complete, false);
    assert.equal(none.scanned, 0);
  } finally {
    redis.disconnect();
  }
});

test('bad options and --fail-on words are clear errors', async () => {
  await ready();
  const redis = await open(0);
  try {
    await assert.rejects(
      auditKeys(redis, app.keyspace, { count: 0 }),
      /count: 0 is not an integer from 1 to 10000/,
    );
    await assert.rejects(auditKeys(redis, app.keyspace, { paceMs: -1 }), /paceMs: -1 is not an integer/);
  } finally {
    redis.disconnect();
  }
  assert.deepEqual(parseFailOn('no-ttl, unowned'), ['no-ttl', 'unowned']);
  assert.deepEqual(parseFailOn('oversize').sort(), ['long-name', 'over-budget']);
  assert.equal(parseFailOn('any').length, 5);
  assert.throws(
    () => parseFailOn('no-ttl,nottl'),
    /"nottl" is not a finding kind; use a comma list of unowned/,
  );
});

test('creation readers parse tasuki values and ignore anything else', () => {
  const result = TASUKI_CREATION_READERS['task.result'];
  assert.deepEqual(
    result?.parse(
      '{"state":"succeeded","task":"t","attempt":1,"worker":"h:1:\\"q\\"","startedAt":1,"finishedAt":1732391234567,"result":{"finishedAt":5}}',
    ),
    { createdAt: 1732391234567, writer: 'h:1:"q"' },
  );
  assert.equal(result?.parse('{"state":"succeeded"'), undefined, 'cut before finishedAt');
  assert.equal(result?.parse('plain text'), undefined);
  const idem = TASUKI_CREATION_READERS['task.idempotency'];
  assert.deepEqual(idem?.parse('1732391234567-d0a1b2@emails'), { createdAt: 1732391234567 });
  assert.equal(idem?.parse('not-a-task-id'), undefined);
});

test('Redis going away mid-audit is a clear E_REDIS error, not a hang', async () => {
  const own = await EmbeddedRedis.start();
  const redis = await connect({
    url: own.url,
    startAttempts: 2,
    redisOptions: { enableReadyCheck: false, maxRetriesPerRequest: 1 },
  });
  try {
    const p = redis.pipeline();
    for (let j = 0; j < 2000; j++) p.set(`gone:${j}`, '1');
    await p.exec();
    let stopped: Promise<void> | undefined;
    await assert.rejects(
      auditKeys(redis, tasukiKeys('x').space, {
        count: 10,
        paceMs: 5,
        onProgress: (pr) => {
          if (pr.scanned >= 30) stopped ??= own.stop({ kill: true });
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof TasukiError);
        assert.equal(err.code, 'E_REDIS');
        assert.match(
          err.message,
          /^key audit: lost the connection to Redis during .*Check that Redis is reachable/,
        );
        return true;
      },
    );
    await stopped;
  } finally {
    redis.disconnect();
    await own.destroy();
  }
});
