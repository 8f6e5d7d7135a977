/**
 * A throw-away PostgreSQL for tests: `DATABASE_URL` when it is set, otherwise a fresh cluster made
 * with `initdb` in a temp dir and a `postgres` child on a free loopback port (never 5432's server),
 * stopped by PID and deleted by {@link TestPostgres.close}. Running as root, the server runs as the
 * `postgres` user (initdb refuses root). Either way the tests get a schema of their own (first on
 * the `search_path` of {@link TestPostgres.url} and of every pool), dropped on close.
 *
 * Needs the `pg` package (an optional peer dependency of tasuki, loaded on first use).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type pg from 'pg';
import { TasukiError } from '../errors.js';
import { freePort } from '../connection/embedded.js';

/** Options of {@link TestPostgres.start}. */
export interface TestPostgresOptions {
  /** Extra server settings for a throw-away cluster, e.g. `{ deadlock_timeout: '100ms' }`. */
  settings?: Record<string, string>;
  /** Ignore `DATABASE_URL` and always start a throw-away cluster. */
  ignoreEnv?: boolean;
}

type Pg = typeof pg;

/** The `pg` module, imported on first use: it is an optional peer dependency of tasuki. */
async function loadPg(): Promise<Pg> {
  try {
    return (await import('pg')).default;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : '';
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /'pg'/.test(message)) {
      throw new TasukiError(
        'E_CONFIG',
        "TestPostgres needs the 'pg' package, an optional peer dependency of tasuki that is not installed. " +
          "Install it with 'npm install --save-dev pg'.",
        { cause: err },
      );
    }
    throw err;
  }
}

/** Finds a PostgreSQL server binary on PATH or in Debian's /usr/lib/postgresql/<version>/bin. */
export function findPgBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const p = join(root, v, 'bin', name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** uid/gid to run the server as: the `postgres` user when we are root, else ourselves. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new TasukiError(
      'E_CONFIG',
      'running as root, and there is no "postgres" user to run a test PostgreSQL as (initdb refuses root). ' +
        "Install PostgreSQL ('apt-get install postgresql' creates the user) or set DATABASE_URL.",
    );
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/** A PostgreSQL for one test file, plus the pools handed out from it. */
export class TestPostgres {
  private readonly pools: pg.Pool[] = [];
  private exitHook: (() => void) | undefined;

  /** The schema this instance's tests write to (random; dropped by {@link close}). */
  readonly schema = `tasuki_test_${randomBytes(4).toString('hex')}`;
  /** Connection URL of the server, with `search_path` set to {@link schema}. */
  readonly url: string;

  private constructor(
    private readonly pg: Pg,
    /** Connection URL of the server as given (no search_path). */
    readonly serverUrl: string,
    private readonly child: ChildProcess | undefined,
    private readonly dir: string | undefined,
  ) {
    const u = new URL(serverUrl);
    u.searchParams.set('options', `-c search_path=${this.schema}`);
    this.url = u.toString();
    if (child) {
      // If the test process dies without close(), do not leave a server behind.
      this.exitHook = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        if (dir) rmSync(dir, { recursive: true, force: true });
      };
      process.once('exit', this.exitHook);
    }
  }

  /** True when this is a throw-away cluster (not `DATABASE_URL`). */
  get owned(): boolean {
    return this.child !== undefined;
  }

  /** Uses `DATABASE_URL`, or starts a throw-away cluster and waits until it accepts connections. */
  static async start(options: TestPostgresOptions = {}): Promise<TestPostgres> {
    const pg = await loadPg();
    const fromEnv = options.ignoreEnv ? undefined : process.env.DATABASE_URL;
    if (fromEnv) return TestPostgres.ready(new TestPostgres(pg, fromEnv, undefined, undefined));

    const initdb = findPgBinary('initdb');
    const postgres = findPgBinary('postgres');
    if (!initdb || !postgres) {
      throw new TasukiError(
        'E_CONFIG',
        "PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin. Install them with 'apt-get install postgresql' " +
          "(or run 'npm run setup' as root), or set DATABASE_URL to a database tests may use.",
      );
    }
    const user = serverUser();
    const dir = mkdtempSync(join(tmpdir(), 'tasuki-pg-'));
    if (user) chownSync(dir, user.uid, user.gid);
    const data = join(dir, 'data');
    const init = spawnSync(
      initdb,
      ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { encoding: 'utf8', ...user },
    );
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new TasukiError('E_CONFIG', `initdb failed: ${init.error?.message ?? init.stderr.trim()}`);
    }
    const port = await freePort();
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      ...options.settings,
    };
    const args = ['-D', data, '-p', String(port)];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    const child = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'], ...user });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const db = new TestPostgres(pg, `postgres://postgres@127.0.0.1:${port}/postgres`, child, dir);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) {
        await db.close();
        throw new TasukiError(
          'E_CONFIG',
          `postgres exited at start (code ${child.exitCode}): ${stderr.trim()}`,
        );
      }
      const c = new pg.Client({ connectionString: db.serverUrl });
      try {
        await c.connect();
        await c.end();
        return TestPostgres.ready(db);
      } catch {
        await c.end().catch(() => undefined);
      }
      if (Date.now() > deadline) {
        await db.close();
        throw new TasukiError(
          'E_CONFIG',
          `postgres on port ${port} did not accept connections within 20 s: ${stderr.trim()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private static async ready(db: TestPostgres): Promise<TestPostgres> {
    const c = new db.pg.Client({ connectionString: db.serverUrl });
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA ${db.schema}`);
    } finally {
      await c.end();
    }
    return db;
  }

  /** A new pool on this database (search_path: {@link schema}); ended by {@link close}. */
  pool(config: pg.PoolConfig = {}): pg.Pool {
    const p = new this.pg.Pool({ connectionString: this.url, ...config });
    p.on('error', () => undefined);
    this.pools.push(p);
    return p;
  }

  /** Ends the pools; stops a throw-away server (fast shutdown, by PID) and deletes its directory. */
  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.end().catch(() => undefined)));
    if (!this.child) {
      const c = new this.pg.Client({ connectionString: this.serverUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`).finally(() => c.end());
    }
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGINT');
      });
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (this.exitHook) process.off('exit', this.exitHook);
  }
}
