import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { defineKeyspace, KeyValueError, OptionsError, parseEnvelope, TasukiError } from '../../src/index.js';
import { newApp, useRedis } from '../support/redis.js';

const server = useRedis();

const profileV1 = z.object({ name: z.string() });
const profileV2 = z.object({ name: z.string(), plan: z.enum(['free', 'pro']) });

test('typed get / set / mget / delete; every write has the TTL; the envelope says who wrote it', async () => {
  const app = newApp(server());
  const profiles = defineKeyspace(app, {
    owner: 'accounts',
    name: 'user.profile',
    version: 1,
    ttl: '1h',
    schema: profileV1,
    writer: 'web-1',
  });
  assert.equal(await profiles.get('u1'), undefined);
  const before = Date.now();
  await profiles.set('u1', { name: 'Ada' });
  const got = await profiles.get('u1');
  assert.deepEqual(got, { name: 'Ada' });
  const redis = await app.redis();
  const key = profiles.key('u1');
  assert.equal(key, `${app.keyspace.prefix}:v1:user.profile:u1`);
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `TTL ${ttl}`);
  const env = parseEnvelope((await redis.getBuffer(key)) as Buffer);
  assert.equal(env?.header.owner, 'accounts');
  assert.equal(env?.header.writer, 'web-1');
  assert.equal(env?.header.version, 1);
  assert.equal(env?.header.codec, 'json');
  assert.ok((env?.header.writtenAt ?? 0) >= before);
  await profiles.set('u2', { name: 'Bo' }, { ttl: '5s' });
  assert.ok((await redis.pttl(profiles.key('u2'))) <= 5000);
  assert.deepEqual(await profiles.mget(['u1', 'nope', 'u2']), [{ name: 'Ada' }, undefined, { name: 'Bo' }]);
  assert.equal(await profiles.delete('u1'), true);
  assert.equal(await profiles.delete('u1'), false);
  // Long or unusual ids are hashed into the name, never a payload in the key.
  assert.match(profiles.key('x'.repeat(500)), /:user\.profile:#[A-Za-z0-9_-]{22}$/);
});

test('a declaration needs a TTL or a reason; bad options are refused with the bad value quoted', async () => {
  const app = newApp(server());
  assert.throws(
    () => defineKeyspace(app, { owner: 'a', name: 'no.ttl', version: 1, schema: profileV1 }),
    (err: unknown) => err instanceof OptionsError && /give exactly one of ttl/.test(err.message),
  );
  assert.throws(
    () =>
      defineKeyspace(app, {
        owner: 'a',
        name: 'Bad Name',
        version: 0,
        ttl: 'soon' as '1s',
        schema: profileV1,
      }),
    (err: unknown) =>
      err instanceof OptionsError &&
      /name/.test(err.message) &&
      /"soon"/.test(err.message) &&
      /version/.test(err.message),
  );
  const forever = defineKeyspace(app, {
    owner: 'a',
    name: 'feature.flags',
    version: 1,
    noTtlReason: 'a handful of flags, deleted by the admin tool',
    schema: z.boolean(),
  });
  await forever.set('beta', true);
  assert.equal(await (await app.redis()).pttl(forever.key('beta')), -1);
  await assert.rejects(forever.set('beta', true, { ttl: '1s' }), /declared without a TTL/);
  // The name is taken in the registry.
  assert.throws(
    () =>
      defineKeyspace(app, { owner: 'b', name: 'feature.flags', version: 1, ttl: 1000, schema: z.boolean() }),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_KEY',
  );
});

test('schema is checked on write and on read, with a typed error', async () => {
  const app = newApp(server());
  const ks = defineKeyspace(app, { owner: 'a', name: 'checked', version: 1, ttl: '1m', schema: profileV1 });
  await assert.rejects(
    ks.set('x', { name: 42 } as unknown as { name: string }),
    (err: unknown) => err instanceof KeyValueError && err.problem === 'schema' && err.code === 'E_KEY_VALUE',
  );
  // Another writer breaks the format without bumping the version.
  const other = defineKeyspace(newApp(server(), { prefix: app.keyspace.prefix }), {
    owner: 'a',
    name: 'checked',
    version: 1,
    ttl: '1m',
    schema: z.object({ title: z.string() }),
  });
  await other.set('x', { title: 'wrong shape' });
  await assert.rejects(ks.get('x'), (err: unknown) => {
    assert.ok(err instanceof KeyValueError);
    assert.equal(err.problem, 'schema');
    assert.equal(err.issues[0]?.path, 'name');
    return true;
  });
  // A value without an envelope (someone else's) is undecodable, not silently misread.
  await (await app.redis()).set(ks.key('raw'), '{"name":"x"}');
  await assert.rejects(
    ks.get('raw'),
    (err: unknown) => err instanceof KeyValueError && err.problem === 'undecodable',
  );
});

test('msgpack codec round-trips, and a v2 keyspace reads a v1 (json) value through its migration and rewrites it in place', async () => {
  const server1 = server();
  const v1App = newApp(server1);
  const prefix = v1App.keyspace.prefix;
  const v2App = newApp(server1, { prefix });
  const v1 = defineKeyspace(v1App, {
    owner: 'accounts',
    name: 'profile',
    version: 1,
    ttl: '1h',
    schema: profileV1,
  });
  const v2 = defineKeyspace(v2App, {
    owner: 'accounts',
    name: 'profile',
    version: 2,
    ttl: '1h',
    codec: 'msgpack',
    schema: profileV2,
    migrations: { 1: (old) => ({ ...(old as { name: string }), plan: 'free' }) },
  });
  assert.equal(v1.key('u'), v2.key('u'), 'the name keeps v1: formats are migrated in place');
  await v1.set('u', { name: 'Ada' });
  const redis = await v1App.redis();
  await redis.pexpire(v1.key('u'), 600_000);
  assert.deepEqual(await v2.get('u'), { name: 'Ada', plan: 'free' });
  const env = parseEnvelope((await redis.getBuffer(v2.key('u'))) as Buffer);
  assert.equal(env?.header.version, 2, 'rewritten at v2');
  assert.equal(env?.header.codec, 'msgpack');
  const ttl = await redis.pttl(v2.key('u'));
  assert.ok(ttl > 0 && ttl <= 600_000, `the rewrite kept the remaining TTL (${ttl})`);
  assert.deepEqual(await v2.get('u'), { name: 'Ada', plan: 'free' });

  // Rolling deploy: the old code meets a v2 value. Default: ignore (a miss that does not overwrite).
  assert.equal(await v1.get('u'), undefined);
  assert.deepEqual(await v1.getOrSet('u', () => ({ name: 'recomputed by v1' })), {
    name: 'recomputed by v1',
  });
  assert.equal(
    parseEnvelope((await redis.getBuffer(v2.key('u'))) as Buffer)?.header.version,
    2,
    'not overwritten',
  );
  const strict = defineKeyspace(newApp(server1, { prefix }), {
    owner: 'accounts',
    name: 'profile',
    version: 1,
    ttl: '1h',
    schema: profileV1,
    onNewer: 'error',
  });
  await assert.rejects(
    strict.get('u'),
    (err: unknown) => err instanceof KeyValueError && err.problem === 'newer',
  );

  // No migration declared: a clear error that says which one is missing.
  const v3 = defineKeyspace(newApp(server1, { prefix }), {
    owner: 'accounts',
    name: 'profile',
    version: 3,
    ttl: '1h',
    schema: profileV2,
  });
  await assert.rejects(v3.get('u'), (err: unknown) => {
    assert.ok(err instanceof KeyValueError);
    assert.equal(err.problem, 'no-migration');
    assert.match(err.message, /no migration from v2 to v3/);
    return true;
  });
});
