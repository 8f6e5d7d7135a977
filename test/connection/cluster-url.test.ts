/**
 * Redis URLs beyond one server: Redis Cluster (`redis+cluster://`, `rediss+cluster://` with an ACL
 * user) and Sentinel (`redis+sentinel://`), parsed, refused with a clear error when wrong, and used
 * for real: a Sentinel child process in front of a throw-away server.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connection/connect.js';
import { isCluster } from '../../src/connection/redis.js';
import { maskUrl, parseRedisUrl } from '../../src/connection/url.js';
import { OptionsError, Worker } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { freePort } from '../../src/testing/index.js';
import { newApp, until, useRedis } from '../support/redis.js';

const server = useRedis();

test('cluster URLs: seeds, TLS, ACL user and password (decoded), default port', () => {
  assert.deepEqual(
    parseRedisUrl('rediss+cluster://app%2Duser:p%40ss@clustercfg.example.cache.amazonaws.com:6379'),
    {
      kind: 'cluster',
      seeds: [{ host: 'clustercfg.example.cache.amazonaws.com', port: 6379 }],
      tls: true,
      username: 'app-user',
      password: 'p@ss',
    },
  );
  assert.deepEqual(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002'), {
    kind: 'cluster',
    seeds: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 6379 },
      { host: '::1', port: 7002 },
    ],
    tls: false,
  });
  assert.deepEqual(parseRedisUrl('redis://localhost:6380/2'), {
    kind: 'single',
    url: 'redis://localhost:6380/2',
  });
  assert.equal(maskUrl('redis+cluster://u:secret@a:1,b:2'), 'redis+cluster://u:***@a:1,b:2');
});

test('sentinel URLs: sentinels, master name, db', () => {
  assert.deepEqual(parseRedisUrl('redis+sentinel://:pw@s1:26379,s2:26380/mymaster/3'), {
    kind: 'sentinel',
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
    ],
    name: 'mymaster',
    db: 3,
    tls: false,
    password: 'pw',
  });
});

test('bad URLs are OptionsErrors that say what to write', () => {
  const bad: [string, RegExp][] = [
    ['redis+cluster:///', /names no host/],
    ['redis+cluster://a:1/2', /Redis Cluster has database 0 only/],
    ['redis+sentinel://s1:26379', /names no master/],
    ['redis+sentinel://s1:26379/m/x', /database "x"/],
    ['redis+cluster://a:b:c', /expected host:port/],
    ['memcached://a:1', /redis\+cluster:\/\/ \(Redis Cluster\)/],
  ];
  for (const [url, message] of bad) {
    assert.throws(
      () => parseRedisUrl(url),
      (err: unknown) => err instanceof OptionsError && message.test(err.message),
      url,
    );
  }
});

/** A redis-server in Sentinel mode watching `port` as `mymaster`; stopped by PID. */
async function startSentinel(port: number): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tasuki-sentinel-'));
  const sport = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sport}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${port} 1`,
      'sentinel down-after-milliseconds mymaster 1000',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { port: sport, stop };
}

test('Sentinel: the app finds the primary through Sentinel and runs tasks there', async () => {
  const sentinel = await startSentinel(server().port);
  try {
    const url = `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster`;
    // The sentinel answers once it has loaded its config: connect retries until then.
    let conn: Awaited<ReturnType<typeof connect>> | undefined;
    await until(
      async () => {
        conn = await connect({ url, startAttempts: 2 }).catch(() => undefined);
        return conn !== undefined;
      },
      10_000,
      'the sentinel to answer',
    );
    assert.ok(conn && !isCluster(conn));
    assert.equal(await conn.ping(), 'PONG');
    conn.disconnect();
    const app = newApp({ url }, { logger: silentLogger() });
    const t = app.task({ name: 'double', schema: z.object({ n: z.number() }), handler: ({ n }) => n * 2 });
    const worker = new Worker(app, { logger: silentLogger() });
    await worker.start();
    assert.equal(await (await t.enqueue({ n: 21 })).result({ timeout: '10s' }), 42);
    await worker.stop();
  } finally {
    await sentinel.stop();
  }
});
