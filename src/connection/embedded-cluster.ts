import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { TasukiError } from '../errors.js';
import { EmbeddedRedis, type TlsFiles } from './embedded.js';

/** Options for a throw-away Redis Cluster of `redis-server` children on loopback ports. */
export interface EmbeddedClusterOptions {
  /** Masters (default 3; Redis Cluster needs at least 3). */
  masters?: number;
  /** Replicas per master (default 1). */
  replicas?: number;
  /** `cluster-node-timeout` in ms: how soon a silent master counts as failed (default 2000). */
  nodeTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node. */
  args?: string[];
  /** Path of `redis-server` (default on PATH); `redis-cli` is looked up beside it on PATH. */
  binary?: string;
  /** Serve TLS only, cluster bus and replication included, with these PEM files. */
  tls?: TlsFiles;
}

/** True when `port` can be listened on at 127.0.0.1 now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A free port for a cluster node: its cluster bus listens on port + 10000, which must be free too,
 * so both are checked. Both are taken below Linux's ephemeral range (32768 and up), where the
 * system hands out ports to every outgoing connection and a port found free could be taken before
 * the node binds it.
 */
export async function freeClusterPort(taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 12_700);
    if (taken.has(port) || taken.has(port + 10_000) || taken.has(port - 10_000)) continue;
    if ((await canListen(port)) && (await canListen(port + 10_000))) return port;
  }
}

/** What `CLUSTER NODES` says of one node. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** Node id of its master (replicas). */
  masterId?: string;
  failed: boolean;
  /** Slot ranges served (masters), e.g. `[[0, 5460]]`. */
  slots: [number, number][];
}

/** Parses a `CLUSTER NODES` reply. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  return text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
      const port = Number((addr ?? '').split('@')[0]?.split(':').pop());
      const f = (flags ?? '').split(',');
      return {
        id: id as string,
        port,
        role: f.includes('master') ? 'master' : 'replica',
        ...(master && master !== '-' ? { masterId: master } : {}),
        failed: f.includes('fail') || f.includes('fail?'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [a, b] = s.split('-');
            return [Number(a), Number(b ?? a)] as [number, number];
          }),
      };
    });
}

/**
 * A local Redis Cluster for tests and benchmarks: `masters` + `masters × replicas` redis-server
 * children (`--cluster-enabled yes`, each its own temp dir and free loopback port) joined with
 * `redis-cli --cluster create`. Every node is an {@link EmbeddedRedis}, stopped by PID; a node can
 * be killed and restarted (it rejoins with its `nodes.conf`).
 */
export class EmbeddedCluster {
  readonly nodes: EmbeddedRedis[] = [];

  private constructor(private readonly options: EmbeddedClusterOptions) {}

  /** Starts the nodes, creates the cluster and waits until every node says `cluster_state:ok`. */
  static async start(options: EmbeddedClusterOptions = {}): Promise<EmbeddedCluster> {
    const cluster = new EmbeddedCluster(options);
    try {
      await cluster.create();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** A tasuki URL for the cluster: `redis+cluster://127.0.0.1:<port>,...` (every node a seed). */
  get url(): string {
    return `${this.options.tls ? 'rediss' : 'redis'}+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  /** The PEM files when the cluster serves TLS. */
  get tls(): TlsFiles | undefined {
    return this.options.tls;
  }

  /** Seed nodes for ioredis `Cluster`. */
  get seeds(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** The node listening on `port`. */
  node(port: number): EmbeddedRedis {
    const n = this.nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no node of this cluster listens on port ${port}`);
    return n;
  }

  private async create(): Promise<void> {
    const masters = this.options.masters ?? 3;
    const replicas = this.options.replicas ?? 1;
    const args = [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      String(this.options.nodeTimeoutMs ?? 2000),
      // A replica of a master that was away a while may still take over (tests kill masters).
      '--cluster-replica-validity-factor',
      '0',
      ...(this.options.tls ? ['--tls-cluster', 'yes'] : []),
      ...(this.options.args ?? []),
    ];
    const count = masters * (1 + replicas);
    const ports = new Set<number>();
    for (let i = 0; i < count; i++) {
      const port = await freeClusterPort(ports);
      ports.add(port);
      this.nodes.push(this.newNode(port, args));
    }
    await Promise.all(this.nodes.map((n, i) => this.startNode(n, i, ports, args)));
    const cli = spawnSync(
      'redis-cli',
      [
        ...(this.options.tls ? ['--tls', '--cacert', this.options.tls.ca] : []),
        '--cluster',
        'create',
        ...this.nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (cli.error || cli.status !== 0) {
      throw new TasukiError(
        'E_CONFIG',
        `redis-cli --cluster create failed: ${cli.error?.message ?? ''}${cli.stdout}${cli.stderr}`.trim(),
      );
    }
    await this.waitUntilHealthy();
  }

  private newNode(port: number, args: string[]): EmbeddedRedis {
    return new EmbeddedRedis({
      port,
      args,
      ...(this.options.binary ? { binary: this.options.binary } : {}),
      ...(this.options.tls ? { tls: this.options.tls } : {}),
    });
  }

  /** Starts node `i`; a port taken meanwhile by someone else is replaced by another (a few times). */
  private async startNode(node: EmbeddedRedis, i: number, ports: Set<number>, args: string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await node.start();
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        await node.destroy();
        const port = await freeClusterPort(ports);
        ports.add(port);
        node = this.newNode(port, args);
        this.nodes[i] = node;
      }
    }
  }

  /** One plain connection to the node on `port` (the caller disconnects it). */
  direct(port: number): Redis {
    const c = new Redis(port, '127.0.0.1', {
      maxRetriesPerRequest: 1,
      ...(this.options.tls ? { tls: { ca: readFileSync(this.options.tls.ca) } } : {}),
    });
    c.on('error', () => undefined);
    return c;
  }

  /** `CLUSTER NODES` as seen from a live node. */
  async topology(): Promise<ClusterNodeInfo[]> {
    for (const n of this.nodes) {
      if (n.pid === undefined) continue;
      const c = this.direct(n.port);
      try {
        return parseClusterNodes((await c.cluster('NODES')) as string);
      } catch {
        // try the next node
      } finally {
        c.disconnect();
      }
    }
    throw new Error('no node of the cluster answers');
  }

  /**
   * Waits until every running node reports `cluster_state:ok`, all 16384 slots are served by
   * masters that are not failed, and every master has its replicas linked.
   */
  async waitUntilHealthy(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    for (;;) {
      why = await this.unhealthy();
      if (why === '') return;
      if (Date.now() > deadline)
        throw new TasukiError('E_CONFIG', `the test cluster is not healthy after ${timeoutMs} ms: ${why}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async unhealthy(): Promise<string> {
    for (const n of this.nodes) {
      if (n.pid === undefined) continue;
      const c = this.direct(n.port);
      try {
        const info = await c.cluster('INFO');
        if (!/cluster_state:ok/.test(info)) return `node ${n.port} is not ok`;
        const nodes = parseClusterNodes((await c.cluster('NODES')) as string);
        const served = nodes
          .filter((x) => x.role === 'master' && !x.failed)
          .reduce((s, x) => s + x.slots.reduce((a, [lo, hi]) => a + hi - lo + 1, 0), 0);
        if (served !== 16384) return `node ${n.port} sees ${served} slots served`;
        const role = await c.role();
        if (role[0] === 'slave' && role[3] !== 'connected') return `replica ${n.port} is not in sync`;
      } catch (err) {
        return `node ${n.port}: ${(err as Error).message}`;
      } finally {
        c.disconnect();
      }
    }
    return '';
  }

  /** Stops every node by PID and deletes their dirs. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.destroy()));
  }
}
