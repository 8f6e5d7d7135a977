// Fault 10.6: a wrong password (WRONGPASS) or a missing one (NOAUTH) was retried like a network
// failure and reported as "cannot reach Redis".
//
// Expected: an authentication failure is its own error, E_AUTH, reported at the first attempt (a
// password does not get better by retrying), naming the URL with the password masked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { connect, tasuki, TasukiError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { useRedis } from '../support/redis.js';

const server = useRedis({ args: ['--requirepass', 'rightpw'] });

function authError(err: unknown): boolean {
  assert.ok(err instanceof TasukiError, String(err));
  assert.equal(err.code, 'E_AUTH');
  assert.match(err.message, /Redis refused the credentials in redis:\/\/(app)?:?\*{0,3}@?127\.0\.0\.1/);
  assert.doesNotMatch(err.message, /wrongpw/);
  assert.doesNotMatch(err.message, /cannot reach/);
  return true;
}

test(
  'a wrong password fails at once with E_AUTH, not after retries as "cannot reach Redis"',
  { timeout: 10_000 },
  async () => {
    const started = Date.now();
    await assert.rejects(
      connect({ url: `redis://:wrongpw@127.0.0.1:${server().port}`, startAttempts: 5 }),
      (err) => {
        authError(err);
        assert.match((err as Error).message, /WRONGPASS/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  },
);

test('a wrong ACL user/password pair fails with E_AUTH', { timeout: 10_000 }, async () => {
  await assert.rejects(connect({ url: `redis://app:wrongpw@127.0.0.1:${server().port}` }), authError);
});

test(
  'no password where one is required fails at once with E_AUTH (NOAUTH)',
  { timeout: 10_000 },
  async () => {
    const started = Date.now();
    await assert.rejects(connect({ url: `redis://127.0.0.1:${server().port}` }), (err) => {
      assert.ok(err instanceof TasukiError);
      assert.equal(err.code, 'E_AUTH');
      assert.match(err.message, /NOAUTH/);
      return true;
    });
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  },
);

test('apps and workers report E_AUTH; the right password connects', { timeout: 10_000 }, async () => {
  const url = `redis://:wrongpw@127.0.0.1:${server().port}`;
  const app = tasuki({ redis: url, logger: silentLogger() });
  const t = app.task({ name: 't', schema: z.object({}), handler: () => 1 });
  await assert.rejects(t.enqueue({}), authError);
  await assert.rejects(app.getTask('1-0@default'), authError);
  await assert.rejects(new Worker(app, { logger: silentLogger() }).start(), authError);
  await app.close();
  const good = await connect({ url: `redis://:rightpw@127.0.0.1:${server().port}` });
  assert.equal(await good.ping(), 'PONG');
  good.disconnect();
});
