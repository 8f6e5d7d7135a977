import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SystemName } from './config.js';

/** What the parent tells a worker child at start (as JSON in argv). */
export interface ChildConfig {
  system: SystemName;
  host: string;
  port: number;
  queue: string;
  maxPayloadBytes: number;
  payloadDir: string;
  concurrency: number;
  /** Tasks to drain before reporting `done`; 0 to run until told to stop. */
  expect: number;
  /**
   * The first tasks of those, run but not measured: they warm the JIT, which a 20,000-task drain of
   * half a second would otherwise mostly measure (every system alike). Default 0.
   */
  warmup?: number;
}

/** Extra node flags for worker children, e.g. `--cpu-prof --cpu-prof-dir DIR` (set by `--cpu-prof`). */
export const childNodeFlags: string[] = [];

export type ChildReport =
  | { type: 'ready' }
  | { type: 'done'; elapsedMs: number; cpuUs: number; failures: number }
  | { type: 'stopped'; failures: number }
  | { type: 'error'; message: string };

export type ParentCommand = { type: 'stop' };

const CHILD = fileURLToPath(new URL('./worker-child.ts', import.meta.url));
const PROJECT = fileURLToPath(new URL('..', import.meta.url));

/** A worker child process, seen from the bench. */
export class WorkerProcess {
  private readonly reports: ChildReport[] = [];
  private waiter: (() => void) | undefined;
  private exited = false;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: ChildReport) => {
      this.reports.push(m);
      this.waiter?.();
    });
    child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  /** Forks a worker child and waits until its worker runs. */
  static async start(config: ChildConfig, timeoutMs = 60_000): Promise<WorkerProcess> {
    const child = fork(CHILD, [JSON.stringify(config)], {
      cwd: PROJECT,
      execArgv: ['--import', 'tsx', ...childNodeFlags],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const p = new WorkerProcess(child);
    await p.next('ready', timeoutMs);
    return p;
  }

  /** Waits for the report of the given type; rejects on an error report, an exit or the timeout. */
  private async next<T extends ChildReport['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<ChildReport, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.reports.findIndex((r) => r.type === type || r.type === 'error');
      if (i >= 0) {
        const r = this.reports.splice(i, 1)[0] as ChildReport;
        if (r.type === 'error') throw new Error(`worker child failed: ${r.message}`);
        return r as Extract<ChildReport, { type: T }>;
      }
      if (this.exited) throw new Error(`worker child exited before reporting "${type}"`);
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new Error(`worker child did not report "${type}" within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /**
   * Waits until the child drained its `expect` tasks: elapsed ms from the first measured start (after
   * `warmup` tasks) to the last finish, and the worker process's CPU time (user + system, µs) over
   * the same span, which covers `expect - warmup` tasks.
   */
  async done(timeoutMs = 240_000): Promise<{ elapsedMs: number; cpuUs: number; failures: number }> {
    const r = await this.next('done', timeoutMs);
    return { elapsedMs: r.elapsedMs, cpuUs: r.cpuUs, failures: r.failures };
  }

  /** Asks the worker to stop and waits for the child to exit. */
  async stop(timeoutMs = 30_000): Promise<{ failures: number }> {
    this.child.send({ type: 'stop' } satisfies ParentCommand);
    const r = await this.next('stopped', timeoutMs);
    await this.exit(timeoutMs);
    return { failures: r.failures };
  }

  private async exit(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (!this.exited) this.kill();
  }

  /** Kills the child (by its own PID) if it still runs. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
