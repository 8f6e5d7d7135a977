/**
 * A throw-away RabbitMQ node for tests: a `rabbitmq-server` child with its own node name, AMQP and
 * distribution ports, its own `epmd` (a child on a private port, so the machine's shared epmd is
 * never touched), its own HOME (Erlang cookie), data and log dirs and config file, all in a temp
 * dir. Started by the test, waited on through its AMQP port (not a sleep), stopped by PID, restarted
 * on the same ports with its data kept. Nothing depends on a RabbitMQ at 5672.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../connection/embedded.js';
import { TasukiError } from '../errors.js';

/** Options of {@link TestRabbitMq.start}. */
export interface TestRabbitMqOptions {
  /** Extra lines for rabbitmq.conf (sysctl format), e.g. `['consumer_timeout = 60000']`. */
  config?: string[];
  /** How long to wait for the node to accept AMQP connections, ms (default 60 000). */
  startTimeoutMs?: number;
}

/** Where Debian puts the server script. */
const SERVER_SCRIPTS = ['/usr/lib/rabbitmq/bin/rabbitmq-server', '/usr/sbin/rabbitmq-server'];

function findServer(): string {
  const found = SERVER_SCRIPTS.find((p) => existsSync(p));
  if (!found) {
    throw new TasukiError(
      'E_CONFIG',
      'TestRabbitMq needs rabbitmq-server, which is not installed. Run `npm run setup:postgres` ' +
        "(it installs it as root) or 'sudo apt-get install rabbitmq-server'.",
    );
  }
  return found;
}

function waitForPort(port: number, deadline: number, child: ChildProcess, log: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`rabbitmq-server exited before it listened on ${port}:\n${log()}`));
        return;
      }
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline)
          reject(new Error(`rabbitmq-server did not listen on ${port} in time:\n${log()}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A RabbitMQ node for one test file. */
export class TestRabbitMq {
  private server: ChildProcess | undefined;
  private epmd: ChildProcess | undefined;
  private output = '';
  private readonly exitHook = (): void => {
    this.killNow();
    rmSync(this.dir, { recursive: true, force: true });
  };

  private constructor(
    readonly dir: string,
    /** The AMQP port. */
    readonly port: number,
    private readonly distPort: number,
    private readonly epmdPort: number,
    /** The Erlang node name (`tsk<random>@localhost`). */
    readonly nodeName: string,
    private readonly startTimeoutMs: number,
  ) {
    process.once('exit', this.exitHook);
  }

  /** Starts a node and waits until it accepts AMQP connections. */
  static async start(options: TestRabbitMqOptions = {}): Promise<TestRabbitMq> {
    findServer();
    const dir = mkdtempSync(join(tmpdir(), 'tasuki-rabbitmq-'));
    const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
    const nodeName = `tsk${port}@localhost`;
    writeFileSync(
      join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = 127.0.0.1:${port}`,
        // A temp dir on a busy test machine may be short of the default 50 MB headroom.
        'disk_free_limit.absolute = 1MB',
        'log.console = true',
        'log.console.level = warning',
        'log.file = false',
        ...(options.config ?? []),
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    // An empty env file, so /etc/rabbitmq/rabbitmq-env.conf (node name, epmd) is not read.
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
    const node = new TestRabbitMq(dir, port, distPort, epmdPort, nodeName, options.startTimeoutMs ?? 60_000);
    try {
      await node.boot();
    } catch (err) {
      await node.close();
      throw err;
    }
    return node;
  }

  /** `amqp://guest:guest@127.0.0.1:<port>`: what an app's `broker` option takes. */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** The node's beam process id (from its pid file), while it runs. */
  get pid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dir, 'pid'), 'utf8').trim());
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: d,
      LANG: 'C.UTF-8',
      RABBITMQ_CONF_ENV_FILE: join(d, 'rabbitmq-env.conf'),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_MNESIA_BASE: join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: join(d, 'log'),
      RABBITMQ_CONFIG_FILE: join(d, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(d, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(d, 'pid'),
    };
  }

  private async boot(): Promise<void> {
    const env = this.env();
    if (!this.epmd || this.epmd.exitCode !== null || this.epmd.signalCode !== null) {
      this.epmd = spawn('epmd', ['-port', String(this.epmdPort), '-address', '127.0.0.1'], {
        env,
        stdio: 'ignore',
      });
    }
    rmSync(join(this.dir, 'pid'), { force: true });
    this.output = '';
    const server = spawn(findServer(), [], { env, cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-8000);
    };
    server.stdout.on('data', keep);
    server.stderr.on('data', keep);
    this.server = server;
    await waitForPort(this.port, Date.now() + this.startTimeoutMs, server, () => this.output);
  }

  /**
   * Stops the node by PID: SIGTERM (a clean stop, queues written out) and wait, or SIGKILL with
   * `kill`. Its data dir stays, so {@link startAgain} brings the same queues back.
   */
  async stop(opts: { kill?: boolean } = {}): Promise<void> {
    const server = this.server;
    if (!server) return;
    const beam = this.pid;
    if (opts.kill) {
      if (beam) process.kill(beam, 'SIGKILL');
      server.kill('SIGKILL');
    } else if (beam) {
      process.kill(beam, 'SIGTERM');
    } else {
      server.kill('SIGTERM');
    }
    await exited(server);
    this.server = undefined;
  }

  /** Starts the node again on the same ports with the same data. */
  async startAgain(): Promise<void> {
    await this.boot();
  }

  /**
   * Runs `rabbitmqctl` against this node (e.g. `['close_all_connections', 'test']`, `['list_queues']`)
   * and resolves its output; rejects with its error output when it fails.
   */
  ctl(args: readonly string[], timeoutMs = 60_000): Promise<string> {
    const dir = SERVER_SCRIPTS[0]?.replace(/rabbitmq-server$/, '') ?? '';
    const binary = existsSync(`${dir}rabbitmqctl`) ? `${dir}rabbitmqctl` : 'rabbitmqctl';
    return new Promise((resolve, reject) => {
      execFile(
        binary,
        ['-q', '-n', this.nodeName, ...args],
        { env: this.env(), timeout: timeoutMs, encoding: 'utf8' },
        (err, stdout, stderr) =>
          err
            ? reject(new Error(`rabbitmqctl ${args.join(' ')}: ${stderr || err.message}`))
            : resolve(stdout),
      );
    });
  }

  /** Stops and starts the node (SIGTERM, or SIGKILL with `kill`). */
  async restart(opts: { kill?: boolean } = {}): Promise<void> {
    await this.stop(opts);
    await this.startAgain();
  }

  private killNow(): void {
    const beam = this.pid;
    try {
      if (beam && this.server) process.kill(beam, 'SIGKILL');
    } catch {
      // already gone
    }
    this.server?.kill('SIGKILL');
    this.epmd?.kill('SIGKILL');
  }

  /** Stops the node and its epmd for good and deletes the temp dir. */
  async close(): Promise<void> {
    process.removeListener('exit', this.exitHook);
    await this.stop().catch(() => this.killNow());
    const epmd = this.epmd;
    if (epmd) {
      epmd.kill('SIGTERM');
      await exited(epmd);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
