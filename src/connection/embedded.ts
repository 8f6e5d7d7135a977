import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { TasukiError } from '../errors.js';

/** Options for a throw-away `redis-server` child process. */
export interface EmbeddedRedisOptions {
  /** Port to listen on; default a free loopback port. */
  port?: number;
  /** Turn on AOF persistence (appendfsync always) in the server's temp dir. Default off. */
  appendonly?: boolean;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** Path of the binary (default `redis-server` on PATH). */
  binary?: string;
  /**
   * Serve TLS only (no plain port) with these PEM files (see `makeTestCertificates` in
   * `tasuki/testing`); clients are not asked for certificates.
   */
  tls?: TlsFiles;
}

/** PEM files of a TLS server: its certificate and key, and the CA that signed it. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/** Arguments that make `redis-server` serve TLS only on `port` (and its cluster bus and replication, when clustered). */
export function tlsArgs(port: number, tls: TlsFiles): string[] {
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    tls.cert,
    '--tls-key-file',
    tls.key,
    '--tls-ca-cert-file',
    tls.ca,
    '--tls-auth-clients',
    'no',
    '--tls-replication',
    'yes',
  ];
}

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function checkBinary(binary: string): void {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new TasukiError(
      'E_CONFIG',
      `cannot run "${binary}": ${probe.error?.message ?? probe.stderr}. Install Redis ('apt-get install redis-server', ` +
        `or run 'npm run setup' as root), or set REDIS_URL to a Redis you already run.`,
    );
  }
}

/**
 * A `redis-server` child on a loopback port with its own temp dir: used by `tasuki dev` when no
 * Redis URL is set, and by the test harness. Persistence is off unless `appendonly` is asked for.
 */
export class EmbeddedRedis {
  readonly dir: string;
  port = 0;
  private child: ChildProcess | undefined;
  private readonly options: EmbeddedRedisOptions;

  constructor(options: EmbeddedRedisOptions = {}) {
    this.options = options;
    this.dir = mkdtempSync(join(tmpdir(), 'tasuki-redis-'));
  }

  /** Starts a server and waits until it answers PING. */
  static async start(options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
    const server = new EmbeddedRedis(options);
    await server.start();
    return server;
  }

  get url(): string {
    return `${this.options.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts (or, after {@link stop}, restarts) the server; keeps the port it had. */
  async start(): Promise<void> {
    const binary = this.options.binary ?? 'redis-server';
    checkBinary(binary);
    if (this.port === 0) this.port = this.options.port ?? (await freePort());
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.options.appendonly ? 'yes' : 'no',
      ...(this.options.appendonly ? ['--appendfsync', 'always'] : []),
      '--daemonize',
      'no',
      '--logfile',
      '',
      '--loglevel',
      'warning',
      ...(this.options.tls ? tlsArgs(this.port, this.options.tls) : []),
      ...(this.options.args ?? []),
    ];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    this.child = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) =>
        reject(
          new TasukiError('E_CONFIG', `redis-server exited with code ${code} at start: ${stderr.trim()}`),
        ),
      ),
    );
    exited.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await Promise.race([this.ping(), exited]);
      if (ok) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new TasukiError(
          'E_CONFIG',
          `redis-server on port ${this.port} did not answer PING within 10 s`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async ping(): Promise<boolean> {
    const c = new Redis(this.port, '127.0.0.1', {
      ...(this.options.tls ? { tls: { ca: readFileSync(this.options.tls.ca) } } : {}),
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
    });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } catch (err) {
      // A server that asks for a password is up.
      return err instanceof Error && /NOAUTH|WRONGPASS/.test(err.message);
    } finally {
      c.disconnect();
    }
  }

  /** Stops the server by PID (SIGTERM, or SIGKILL with `kill: true`) and waits for it to exit. */
  async stop(opts: { kill?: boolean } = {}): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(opts.kill ? 'SIGKILL' : 'SIGTERM');
    });
  }

  /** Stops the server and deletes its temp dir. */
  async destroy(): Promise<void> {
    await this.stop({ kill: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
