import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, EmbeddedRedis, maskUrl, redisUrlFromEnv, TasukiError } from '../../src/index.js';
import { freePort } from '../../src/testing/index.js';
import { checkRedisUrl } from '../../src/connection/url.js';
import { useRedis } from '../support/redis.js';

const server = useRedis({ args: ['--requirepass', 'adminpw'] });

test('masks the password in URLs', () => {
  assert.equal(maskUrl('redis://user:secret@h:6379/2'), 'redis://user:***@h:6379/2');
  assert.equal(maskUrl('rediss://:secret@h:6380'), 'rediss://:***@h:6380');
  assert.equal(maskUrl('redis://h:6379'), 'redis://h:6379');
});

test('takes TASUKI_REDIS_URL before REDIS_URL', () => {
  assert.equal(redisUrlFromEnv({ TASUKI_REDIS_URL: 'redis://a', REDIS_URL: 'redis://b' }), 'redis://a');
  assert.equal(redisUrlFromEnv({ REDIS_URL: 'redis://b' }), 'redis://b');
  assert.equal(redisUrlFromEnv({ REDIS_URL: '  ' }), undefined);
});

test('rejects URLs that are not Redis URLs, naming the problem', () => {
  assert.throws(() => checkRedisUrl('http://h:6379'), /scheme "http:"; use redis:\/\//);
  assert.throws(() => checkRedisUrl('not a url'), /is not a URL/);
  assert.throws(() => checkRedisUrl('redis://h:6379/x'), /database "x"/);
});

test('connects with ACL user, password and db index', async () => {
  const admin = await connect({ url: `redis://:adminpw@127.0.0.1:${server().port}` });
  await admin.call('ACL', 'SETUSER', 'app', 'on', '>apppw', '~*', '+@all');
  const c = await connect({ url: `redis://app:apppw@127.0.0.1:${server().port}/3` });
  await c.set('k', 'v');
  assert.equal(await admin.select(3), 'OK');
  assert.equal(await admin.get('k'), 'v');
  assert.equal(await c.acl('WHOAMI'), 'app');
  c.disconnect();
  admin.disconnect();
});

test('wrong password: a clear error with the password masked', async () => {
  await assert.rejects(
    connect({ url: `redis://app:wrongpw@127.0.0.1:${server().port}`, startAttempts: 2 }),
    (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_AUTH'); // refused credentials are not "cannot reach" (test/faults/auth.test.ts)
      assert.match(err.message, /redis:\/\/app:\*\*\*@127\.0\.0\.1/);
      assert.doesNotMatch(err.message, /wrongpw/);
      return true;
    },
  );
});

test('unreachable Redis: bounded retries with backoff, then E_CONNECTION naming the URL', async () => {
  const port = await freePort();
  const started = Date.now();
  await assert.rejects(
    connect({ url: `redis://u:pw@127.0.0.1:${port}`, startAttempts: 4 }),
    (err: unknown) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_CONNECTION');
      assert.match(
        err.message,
        new RegExp(`cannot reach Redis at redis://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}/? after 4 attempts`),
      );
      return true;
    },
  );
  const elapsed = Date.now() - started;
  // Backoff 100, 200, 400 ms (±20 %) between the 4 attempts: at least ~560 ms, well under 5 s.
  assert.ok(elapsed >= 500 && elapsed < 5000, `took ${elapsed} ms`);
});

test('rediss:// connects over TLS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tasuki-tls-'));
  const sh = (cmd: string): void => {
    execSync(cmd, { cwd: dir, stdio: 'ignore' });
  };
  try {
    sh(
      'openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=tasuki-test-ca',
    );
    sh('openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    sh(
      'openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile ext.cnf',
    );
  } catch {
    t.skip('openssl not available');
    return;
  }
  const tlsPort = await freePort();
  const tlsServer = await EmbeddedRedis.start({
    args: [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      join(dir, 'server.crt'),
      '--tls-key-file',
      join(dir, 'server.key'),
      '--tls-ca-cert-file',
      join(dir, 'ca.crt'),
      '--tls-auth-clients',
      'no',
    ],
  });
  try {
    const c = await connect({
      url: `rediss://127.0.0.1:${tlsPort}`,
      redisOptions: { tls: { ca: readFileSync(join(dir, 'ca.crt')) } },
    });
    assert.equal(await c.ping(), 'PONG');
    const info = await c.client('INFO');
    assert.match(String(info), new RegExp(`laddr=127\\.0\\.0\\.1:${tlsPort}`));
    c.disconnect();
  } finally {
    await tlsServer.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
