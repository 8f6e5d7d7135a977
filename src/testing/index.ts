/**
 * Test helpers for apps built on tasuki (and tasuki's own tests): a throw-away `redis-server` on a
 * free loopback port with its own temp dir, connections to it, restart on the same port, stop by PID.
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { EmbeddedCluster, type EmbeddedClusterOptions } from '../connection/embedded-cluster.js';
import { EmbeddedRedis, type EmbeddedRedisOptions } from '../connection/embedded.js';

export { EmbeddedRedis, freePort, type EmbeddedRedisOptions } from '../connection/embedded.js';

/** A running test Redis plus the connections handed out from it (closed by {@link TestRedis.close}). */
export class TestRedis {
  private readonly clients: Redis[] = [];

  private constructor(readonly server: EmbeddedRedis) {}

  /** Starts a server (persistence off unless `appendonly: true`). */
  static async start(options: EmbeddedRedisOptions = {}): Promise<TestRedis> {
    return new TestRedis(await EmbeddedRedis.start(options));
  }

  get url(): string {
    return this.server.url;
  }

  get port(): number {
    return this.server.port;
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  /** A new connection to the server; closed by {@link close}. */
  client(): Redis {
    const c = new Redis(this.server.port, '127.0.0.1', { maxRetriesPerRequest: null });
    c.on('error', () => undefined);
    this.clients.push(c);
    return c;
  }

  /** Stops the server (SIGTERM, or SIGKILL with `kill`) and starts it again on the same port. */
  async restart(opts: { kill?: boolean } = {}): Promise<void> {
    await this.server.stop(opts);
    await this.server.start();
  }

  /** Stops the server (by PID) without deleting its data dir. */
  stop(opts: { kill?: boolean } = {}): Promise<void> {
    return this.server.stop(opts);
  }

  /** Closes the connections and stops the server for good. */
  async close(): Promise<void> {
    for (const c of this.clients) c.disconnect();
    await this.server.destroy();
  }
}

/**
 * A running test Redis Cluster (3 masters + 3 replicas on loopback by default) plus the
 * connections handed out from it. Nodes are started and stopped by PID like {@link TestRedis}.
 */
export class TestCluster {
  private readonly clients: (Redis | Cluster)[] = [];

  private constructor(readonly cluster: EmbeddedCluster) {}

  /** Starts the nodes and creates the cluster (`redis-cli --cluster create`). */
  static async start(options: EmbeddedClusterOptions = {}): Promise<TestCluster> {
    return new TestCluster(await EmbeddedCluster.start(options));
  }

  /** `redis+cluster://127.0.0.1:<port>,...`: what an app's `redis` option takes. */
  get url(): string {
    return this.cluster.url;
  }

  /** A new cluster connection; closed by {@link close}. */
  client(): Cluster {
    const tls = this.cluster.tls;
    const c = new Cluster(this.cluster.seeds, {
      redisOptions: { maxRetriesPerRequest: null, ...(tls ? { tls: { ca: readFileSync(tls.ca) } } : {}) },
      scaleReads: 'master',
      maxRedirections: 64,
    });
    c.on('error', () => undefined);
    this.clients.push(c);
    return c;
  }

  /** A plain connection to one node (CLUSTER commands, INFO of that node); closed by {@link close}. */
  direct(port: number): Redis {
    const c = this.cluster.direct(port);
    this.clients.push(c);
    return c;
  }

  /** Closes the connections and stops every node for good. */
  async close(): Promise<void> {
    for (const c of this.clients) c.disconnect();
    await this.cluster.destroy();
  }
}

export { EmbeddedCluster, parseClusterNodes } from '../connection/embedded-cluster.js';
export type { ClusterNodeInfo, EmbeddedClusterOptions } from '../connection/embedded-cluster.js';
export { makeTestCertificates } from './tls.js';
export type { TlsFiles } from '../connection/embedded.js';
export { TestPostgres, type TestPostgresOptions } from './postgres.js';
export { TestMariaDb, findMysqlBinary, type TestMariaDbOptions } from './mariadb.js';
export { TestRabbitMq, type TestRabbitMqOptions } from './rabbitmq.js';
