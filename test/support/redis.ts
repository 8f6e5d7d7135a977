import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { tasuki, type AppOptions, type Tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Redis } from 'ioredis';
import { TestCluster, TestRedis } from '../../src/testing/index.js';
import type { EmbeddedRedisOptions } from '../../src/connection/embedded.js';

/**
 * True in the cluster leg (test/cluster/suites.test.ts runs chosen suites with
 * `TASUKI_TEST_CLUSTER=1`): `useRedis()` then starts a local Redis Cluster instead of one server.
 */
export const onCluster = process.env.TASUKI_TEST_CLUSTER === '1';

/**
 * A test cluster seen as a {@link TestRedis} by suites written for one server: `url` and
 * `client()` (an ioredis Cluster, which has the same commands) work; what only a single server has
 * (port, restart, stop) throws, and tests that need it skip themselves with `{ skip: onCluster }`.
 */
class ClusterAsServer {
  constructor(readonly cluster: TestCluster) {}
  get url(): string {
    return this.cluster.url;
  }
  client(): Redis {
    const c = this.cluster.client();
    // KEYS over every master, as one server would answer it (tests list a prefix's keys).
    const keys = async (pattern: string): Promise<string[]> =>
      (await Promise.all(c.nodes('master').map((n) => n.keys(pattern)))).flat();
    return new Proxy(c, {
      get: (target, prop, receiver): unknown =>
        prop === 'keys' ? keys : (Reflect.get(target, prop, receiver) as unknown),
    }) as unknown as Redis;
  }
  close(): Promise<void> {
    return this.cluster.close();
  }
}

/**
 * Starts one throw-away redis-server for the calling test file (before its tests) and stops it after.
 * Use `server()` inside tests. Each test gets isolation through a random key prefix ({@link newApp}).
 * In the cluster leg ({@link onCluster}) it starts a 3 + 3 local cluster instead (options ignored).
 */
export function useRedis(options: EmbeddedRedisOptions = {}): () => TestRedis {
  let redis: TestRedis | undefined;
  before(async () => {
    redis = onCluster
      ? (new ClusterAsServer(await TestCluster.start()) as unknown as TestRedis)
      : await TestRedis.start(options);
  });
  after(async () => {
    await redis?.close();
  });
  return () => {
    if (!redis) throw new Error('useRedis(): the server is not started yet (call it at the top of the file)');
    return redis;
  };
}

/** A random key prefix, so tests sharing one server never see each other's keys. */
export function randomPrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

const apps: Tasuki[] = [];
after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  // A test that failed half-way may leave a worker reconnecting forever; it must not keep this file's
  // process (and so the whole run) alive once every test has reported.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
});

/** A silent app on the test server with a random prefix; closed after the file's tests. */
export function newApp(redis: { readonly url: string }, options: AppOptions = {}): Tasuki {
  const app = tasuki({ redis: redis.url, prefix: randomPrefix(), logger: silentLogger(), ...options });
  apps.push(app);
  return app;
}

/** Resolves when `check()` is true, polling every 10 ms; rejects after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
