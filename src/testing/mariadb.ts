/**
 * A throw-away MariaDB (or MySQL) for tests: `MYSQL_URL` when it is set, otherwise a fresh data
 * directory made with `mariadb-install-db` (or `mysql_install_db`) in a temp dir and a `mariadbd`
 * child on a free loopback port and its own socket (never 3306's server), stopped by PID and deleted
 * by {@link TestMariaDb.close}. Either way the tests get a database of their own (random name),
 * dropped on close.
 *
 * Needs the `mysql2` package (an optional peer dependency of tasuki, loaded on first use).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type mysql from 'mysql2/promise';
import { TasukiError } from '../errors.js';
import { freePort } from '../connection/embedded.js';

/** Options of {@link TestMariaDb.start}. */
export interface TestMariaDbOptions {
  /** Extra server options for a throw-away server, e.g. `{ 'innodb-lock-wait-timeout': '5' }`. */
  settings?: Record<string, string>;
  /** Ignore `MYSQL_URL` and always start a throw-away server. */
  ignoreEnv?: boolean;
}

type MySql = typeof mysql;

async function loadMysql(): Promise<MySql> {
  try {
    return (await import('mysql2/promise')).default;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new TasukiError(
        'E_CONFIG',
        "TestMariaDb needs the 'mysql2' package, an optional peer dependency of tasuki that is not installed. " +
          "Install it with 'npm install --save-dev mysql2'.",
        { cause: err },
      );
    }
    throw err;
  }
}

/** Finds a MariaDB/MySQL binary on PATH or in /usr/sbin, /usr/bin (Debian's places). */
export function findMysqlBinary(...names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/sbin'];
  for (const name of names) {
    for (const dir of dirs) if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** A MariaDB for one test file, plus the pools handed out from it. */
export class TestMariaDb {
  private readonly pools: mysql.Pool[] = [];
  private exitHook: (() => void) | undefined;
  /** The database this instance's tests use (random; dropped by {@link close}). */
  readonly database = `tasuki_test_${randomBytes(4).toString('hex')}`;

  private constructor(
    private readonly mysql: MySql,
    /** Connection URL of the server (no database). */
    readonly serverUrl: string,
    private readonly child: ChildProcess | undefined,
    private readonly dir: string | undefined,
  ) {
    if (child) {
      this.exitHook = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        if (dir) rmSync(dir, { recursive: true, force: true });
      };
      process.once('exit', this.exitHook);
    }
  }

  /** Connection URL of {@link database}. */
  get url(): string {
    const u = new URL(this.serverUrl);
    u.pathname = `/${this.database}`;
    return u.toString();
  }

  /** True when this is a throw-away server (not `MYSQL_URL`). */
  get owned(): boolean {
    return this.child !== undefined;
  }

  /** Uses `MYSQL_URL`, or starts a throw-away server and waits until it accepts connections. */
  static async start(options: TestMariaDbOptions = {}): Promise<TestMariaDb> {
    const mysql = await loadMysql();
    const fromEnv = options.ignoreEnv ? undefined : process.env.MYSQL_URL;
    if (fromEnv) return TestMariaDb.ready(new TestMariaDb(mysql, fromEnv, undefined, undefined));
    const install = findMysqlBinary('mariadb-install-db', 'mysql_install_db');
    const server = findMysqlBinary('mariadbd', 'mysqld');
    if (!install || !server) {
      throw new TasukiError(
        'E_CONFIG',
        "MariaDB server binaries (mariadb-install-db, mariadbd) not found on PATH or in /usr/sbin. Install them with 'apt-get install mariadb-server' " +
          "(or run 'npm run setup:postgres' as root), or set MYSQL_URL to a database server tests may use.",
      );
    }
    const dir = mkdtempSync(join(tmpdir(), 'tasuki-mariadb-'));
    const data = join(dir, 'data');
    // --user=root: the tests may run as root, which mariadbd otherwise refuses.
    const root = process.getuid?.() === 0 ? ['--user=root'] : [];
    const init = spawnSync(
      install,
      [
        '--no-defaults',
        `--datadir=${data}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        ...root,
      ],
      { encoding: 'utf8' },
    );
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new TasukiError(
        'E_CONFIG',
        `mariadb-install-db failed: ${init.error?.message ?? init.stderr.trim()}`,
      );
    }
    const port = await freePort();
    const settings: Record<string, string> = {
      'bind-address': '127.0.0.1',
      'innodb-buffer-pool-size': '32M',
      'innodb-flush-log-at-trx-commit': '0',
      'innodb-lock-wait-timeout': '10',
      ...options.settings,
    };
    const args = [
      '--no-defaults',
      `--datadir=${data}`,
      `--port=${port}`,
      `--socket=${join(dir, 'mysqld.sock')}`,
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      `--log-error=${join(dir, 'error.log')}`,
      '--skip-log-bin',
      '--skip-name-resolve',
      ...root,
      ...Object.entries(settings).map(([k, v]) => `--${k}=${v}`),
    ];
    const child = spawn(server, args, { stdio: 'ignore' });
    const db = new TestMariaDb(mysql, `mysql://root@127.0.0.1:${port}/`, child, dir);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) {
        await db.close();
        throw new TasukiError(
          'E_CONFIG',
          `mariadbd exited at start (code ${child.exitCode}); see its options above`,
        );
      }
      try {
        const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
        await c.end();
        return TestMariaDb.ready(db);
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        await db.close();
        throw new TasukiError('E_CONFIG', `mariadbd on port ${port} did not accept connections within 30 s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private static async ready(db: TestMariaDb): Promise<TestMariaDb> {
    const c = await db.mysql.createConnection(db.serverUrl);
    try {
      await c.query(`CREATE DATABASE \`${db.database}\``);
    } finally {
      await c.end();
    }
    return db;
  }

  /** A new pool on {@link database}; ended by {@link close}. */
  pool(config: mysql.PoolOptions = {}): mysql.Pool {
    const p = this.mysql.createPool({ uri: this.url, ...config });
    this.pools.push(p);
    return p;
  }

  /** Ends the pools; stops a throw-away server (SIGTERM by PID, SIGKILL after 10 s) and deletes its directory. */
  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.end().catch(() => undefined)));
    if (!this.child) {
      const c = await this.mysql.createConnection(this.serverUrl);
      await c.query(`DROP DATABASE IF EXISTS \`${this.database}\``).finally(() => c.end());
    }
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (this.exitHook) process.off('exit', this.exitHook);
  }
}
