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
import { DAY, incidentKeys, seedBlob, seedGood, seedGoodAndBad, type Seeded } from './seed.js';

const server = useRedis();

/** A connection to database `db` of the test server, like the CLI opens one. */
async function open(db: number, auth = ''): Promise<Redis> {
  return (await connect({
    url: `redis://${auth}127.0.0.1:${server().port}/${db}`,
    startAttempts: 2,
    redisOptions: { enableReadyCheck: false },
  })) as Redis;
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
      unowned: 5,
      'no-ttl': 5,
      'over-budget': 2,
      'long-name': 2,
      'wrong-type': 1,
    });
    assert.equal(report.scanned, await redis.dbsize(), 'every key inspected once');
    assert.equal(report.totalKeys, report.scanned);
    // The findings say what is wrong and what to do.
    const byKind = (k: string) => report.findings.find((f) => f.kind === k && f.id !== null);
    assert.match(byKind('no-ttl')?.detail ?? '', /"shop\.rate" is declared with a TTL of 60000 ms/);
    assert.match(byKind('over-budget')?.detail ?? '', /budget of 4096 bytes/);
    assert.match(
      report.findings.find((f) => f.kind === 'long-name')?.detail ?? '',
      /key name is 10\d\d\d bytes \(limit 256\)/,
    );
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
    assert.equal(owners.get('(unowned)')?.keys, 5);
    assert.ok((owners.get('(unowned)')?.bytes ?? 0) > 2 * 1024 * 1024, 'the 2 MB hash alone');
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
    assert.equal(families.get('uploads:raw:*')?.keys, 1);
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
    assert.equal(report.counts.unowned, 5);
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
    assert.deepEqual(report.settings, {
      count: 20,
      paceMs: 25,
      match: null,
      maxKeyBytes: 256,
      unownedMaxBytes: 1024 * 1024,
    });
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
    assert.equal(report.counts['no-ttl'], report.scanned, 'none of them has a TTL');
    assert.ok(report.notes.some((n) => /cancelled after \d+ keys/.test(n)));
    // Already aborted: returns at once with nothing scanned.
    const none = await auditKeys(redis, tasukiKeys('x').space, { signal: AbortSignal.abort() });
    assert.equal(none.complete, false);
    assert.equal(none.scanned, 0);
  } finally {
    redis.disconnect();
  }
});

test('bad audit options: one E_OPTIONS error naming each field and quoting its value', async () => {
  const redis = await open(0);
  const rejects = (options: Record<string, unknown>, message: string) =>
    assert.rejects(auditKeys(redis, tasukiKeys('x').space, options), (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_OPTIONS');
      assert.equal(err.message, message);
      return true;
    });
  try {
    await rejects({ count: 0 }, 'invalid audit options: count: 0 is not an integer from 1 to 10000');
    await rejects(
      { paceMs: -1, maxKeyBytes: 2.5, unownedMaxBytes: 0 },
      'invalid audit options: paceMs: -1 is not an integer from 0 to 60000; ' +
        'maxKeyBytes: 2.5 is not an integer from 1 to 536870912; ' +
        'unownedMaxBytes: 0 is not an integer from 1 to 9007199254740991',
    );
    await rejects({ count: '200' }, 'invalid audit options: count: "200" is not an integer from 1 to 10000');
    await rejects({ maxKeybytes: 100 }, 'invalid audit options: maxKeybytes: unknown option');
    await rejects({ signal: 'stop' }, 'invalid audit options: signal: "stop" is not an AbortSignal');
    await rejects(
      { readers: { 'shop.session': { headBytes: 0, source: 's', parse: () => undefined } } },
      'invalid audit options: readers.shop.session: {"headBytes":0,"source":"s"} is not a creation reader ({ headBytes: 1 to 1048576, source: string, parse(head) })',
    );
    // A huge bad value is quoted as a bounded prefix, never in full.
    await assert.rejects(
      auditKeys(redis, tasukiKeys('x').space, {
        match: 'm'.repeat(20_000),
        count: 'c'.repeat(20_000) as unknown as number,
      }),
      (err: unknown) => {
        assert.ok(err instanceof TasukiError);
        assert.match(
          err.message,
          /^invalid audit options: count: "c{79}… \(20002 characters\) is not an integer from 1 to 10000$/,
        );
        assert.ok(err.message.length < 300, `${err.message.length} characters`);
        return true;
      },
    );
  } finally {
    redis.disconnect();
  }
});

test('--fail-on words: kinds, oversize, any; unknown words quoted (bounded), an empty list refused', () => {
  assert.deepEqual(parseFailOn('no-ttl, unowned'), ['no-ttl', 'unowned']);
  assert.deepEqual(parseFailOn('oversize'), ['over-budget', 'long-name']);
  assert.deepEqual(parseFailOn('no-ttl,oversize,no-ttl'), ['no-ttl', 'over-budget', 'long-name']);
  assert.deepEqual(parseFailOn('any'), ['unowned', 'no-ttl', 'over-budget', 'long-name', 'wrong-type']);
  const fails = (value: string, message: string) =>
    assert.throws(
      () => parseFailOn(value),
      (err: unknown) => {
        assert.ok(err instanceof TasukiError);
        assert.equal(err.code, 'E_OPTIONS');
        assert.equal(err.message, message);
        return true;
      },
    );
  const hint =
    'use a comma list of unowned, no-ttl, over-budget, long-name, wrong-type, oversize (over-budget + long-name) or any';
  fails('no-ttl,nottl', `invalid fail-on kinds: --fail-on: "nottl" is not a finding kind; ${hint}`);
  fails(
    'a,b,no-ttl,c,d',
    `invalid fail-on kinds: --fail-on: "a", "b", "c" and 1 more are not finding kinds; ${hint}`,
  );
  fails(' , ', `invalid fail-on kinds: --fail-on: " , " names no finding kind; ${hint}`);
  fails(
    'x'.repeat(10_000),
    `invalid fail-on kinds: --fail-on: "${'x'.repeat(79)}… (10002 characters) is not a finding kind; ${hint}`,
  );
});

test('an undeclared key gets every finding that applies: a 2 MB hash with no TTL is unowned, no-ttl and over budget', async () => {
  const redis = await open(10);
  try {
    await seedBlob(redis, 'blob:nottl');
    await seedBlob(redis, 'blob:ttl', DAY);
    await redis.set('small:nottl', 'v');
    await redis.set('small:ttl', 'v', 'PX', DAY);
    const space = tasukiKeys('x').space;
    const report = await auditKeys(redis, space);
    assert.deepEqual(pairs(report), [
      'no-ttl blob:nottl',
      'no-ttl small:nottl',
      'over-budget blob:nottl',
      'over-budget blob:ttl',
      'unowned blob:nottl',
      'unowned blob:ttl',
      'unowned small:nottl',
      'unowned small:ttl',
    ]);
    const blob = report.findings.filter((f) => f.key === 'blob:nottl');
    for (const f of blob) {
      assert.equal(f.id, null);
      assert.equal(f.owner, null);
      assert.equal(f.type, 'hash');
      assert.equal(f.ttlMs, null);
      assert.ok((f.bytes ?? 0) > 2 * 1024 * 1024, `${f.bytes} bytes`);
    }
    const bytes = blob[0]?.bytes ?? 0;
    assert.equal(
      blob.find((f) => f.kind === 'no-ttl')?.detail,
      'undeclared and without a TTL: it will never expire, and nobody is known to delete it. Give it a TTL, or declare it with the reason it has none',
    );
    assert.equal(
      blob.find((f) => f.kind === 'over-budget')?.detail,
      `uses ${bytes} bytes; an undeclared key has the default budget of 1048576 bytes (unownedMaxBytes, --unowned-max-bytes). Declare it with its own maxBytes, or find who writes it`,
    );
    assert.equal(report.settings.unownedMaxBytes, 1048576);
    assert.deepEqual(failingKinds(report, parseFailOn('no-ttl,oversize')), ['no-ttl', 'over-budget']);
    // The budget of undeclared keys is an option.
    const roomy = await auditKeys(redis, space, { unownedMaxBytes: 4 * 1024 * 1024 });
    assert.equal(roomy.counts['over-budget'], 0);
    assert.equal(roomy.counts['no-ttl'], 2);
    const tight = await auditKeys(redis, space, { unownedMaxBytes: 1 });
    assert.equal(tight.counts['over-budget'], 4, 'every key is over a budget of one byte');
  } finally {
    redis.disconnect();
  }
});

test('a 10 KB key name is a long-name finding, declared or not, with or without a TTL', async () => {
  const redis = await open(11);
  try {
    const space = tasukiKeys('x').space;
    const shop = declareShopKeys(space);
    const raw = 'A'.repeat(10 * 1024);
    const [first, count] = incidentKeys(raw) as [string, string];
    await redis.set(first, '1', 'PX', DAY);
    await redis.set(count, '1');
    // A name of a declared pattern, written by hand with the raw data instead of through keyPart.
    const declared = `x:v1:{rate:${raw}}:count`;
    assert.equal(space.match(declared), shop.rate);
    await redis.set(declared, '1', 'PX', 60_000);
    const report = await auditKeys(redis, space, { fullNames: true });
    const label = new Map([
      [first, 'first (TTL)'],
      [count, 'count (no TTL)'],
      [declared, 'declared'],
    ]);
    assert.deepEqual(report.findings.map((f) => `${label.get(f.key) ?? f.key}: ${f.kind}`).sort(), [
      'count (no TTL): long-name',
      'count (no TTL): no-ttl',
      'count (no TTL): unowned',
      'declared: long-name',
      // MEMORY USAGE counts the name too: 10 KB is over the counter's 128-byte budget.
      'declared: over-budget',
      'first (TTL): long-name',
      'first (TTL): unowned',
    ]);
    const long = report.findings.find((f) => f.kind === 'long-name' && f.key === declared);
    assert.equal(long?.id, 'shop.rate');
    assert.equal(long?.keyBytes, 10_258);
    assert.equal(
      long?.detail,
      'key name is 10258 bytes (limit 256): a payload in the name? Put data in the value or a store, and a bounded id or hash in the name (keyPart).',
    );
    assert.deepEqual(failingKinds(report, parseFailOn('no-ttl,oversize')), [
      'no-ttl',
      'over-budget',
      'long-name',
    ]);
  } finally {
    redis.disconnect();
  }
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
