/**
 * Connecting to a Redis Cluster from a URL with an ACL user (as on ElastiCache with RBAC): tasks
 * run through it, also over TLS (`rediss+cluster://`, as ElastiCache in-transit encryption); a wrong password is `E_AUTH` at once, an unreachable cluster `E_CONNECTION`, each
 * naming the URL with the password masked.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connection/connect.js';
import { isCluster } from '../../src/connection/redis.js';
import { TasukiError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { makeTestCertificates, TestCluster } from '../../src/testing/index.js';
import { newApp } from '../support/redis.js';

let tc: TestCluster | undefined;
before(async () => {
  tc = await TestCluster.start();
  // The ACL user on every node, as a managed service sets it up; only tasuki's keys.
  for (const n of tc.cluster.nodes) {
    await tc.direct(n.port).acl('SETUSER', 'app', 'on', '>s3cret', '~tsk:*', '~t*', '+@all');
  }
});
after(() => tc?.close());

/** The cluster's URL with `user:password@` in it. */
function withUser(auth: string): string {
  return (tc as TestCluster).url.replace('redis+cluster://', `redis+cluster://${auth}@`);
}

test('an ACL user in a cluster URL: the app runs tasks through it', async () => {
  const url = withUser('app:s3cret');
  const redis = await connect({ url });
  assert.ok(isCluster(redis));
  assert.equal(await redis.call('ACL', 'WHOAMI'), 'app');
  redis.disconnect();
  const app = newApp({ url }, { queues: ['a', 'b', 'c'], logger: silentLogger() });
  const tasks = ['a', 'b', 'c'].map((queue) =>
    app.task({ name: `sq-${queue}`, queue, schema: z.object({ n: z.number() }), handler: ({ n }) => n * n }),
  );
  const worker = new Worker(app, { logger: silentLogger() });
  await worker.start();
  const handles = await Promise.all(tasks.map((t, i) => t.enqueue({ n: i + 2 })));
  assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: '20s' }))), [4, 9, 16]);
  await worker.stop();
});

test('a wrong password is E_AUTH with the password masked; no cluster there is E_CONNECTION', async () => {
  await assert.rejects(connect({ url: withUser('app:wrong'), startAttempts: 3 }), (err: unknown) => {
    assert.ok(err instanceof TasukiError);
    assert.equal(err.code, 'E_AUTH', err.message);
    assert.doesNotMatch(err.message, /wrong/);
    return true;
  });
  await assert.rejects(
    connect({ url: 'redis+cluster://127.0.0.1:1,127.0.0.1:2', startAttempts: 2, maxBackoffMs: 50 }),
    (err: unknown) => err instanceof TasukiError && err.code === 'E_CONNECTION',
  );
});

test('rediss+cluster:// (TLS on clients, cluster bus and replication) with an ACL user runs tasks', async () => {
  const certs = makeTestCertificates();
  const secure = await TestCluster.start({ tls: certs });
  try {
    for (const n of secure.cluster.nodes) {
      await secure.direct(n.port).acl('SETUSER', 'app', 'on', '>s3cret', '~t*', '+@all');
    }
    const url = secure.url.replace('rediss+cluster://', 'rediss+cluster://app:s3cret@');
    assert.match(url, /^rediss\+cluster:\/\//);
    // Without the test CA the server's certificate is refused: nothing connects in clear either.
    await assert.rejects(connect({ url, startAttempts: 1 }), (err: unknown) => err instanceof TasukiError);
    const app = newApp(
      { url },
      { queues: ['a', 'b'], logger: silentLogger(), redisOptions: { tls: { ca: readFileSync(certs.ca) } } },
    );
    const t = app.task({
      name: 'tls',
      queue: 'b',
      schema: z.object({ n: z.number() }),
      handler: ({ n }) => n + 1,
    });
    const worker = new Worker(app, { logger: silentLogger() });
    await worker.start();
    assert.equal(await (await t.enqueue({ n: 41 })).result({ timeout: '20s' }), 42);
    await worker.stop();
    await app.close();
  } finally {
    await secure.close();
  }
});
