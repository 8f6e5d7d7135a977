/**
 * Container health: a running `tasuki worker` or `tasuki beat` writes a small heartbeat file while
 * it is healthy (its loop reaches Redis), and `tasuki health` — the container's health check — exits
 * 0 only while that file is fresh. A file, not Redis: the check must speak for this container alone,
 * and must not need the app module or a connection to answer in a second.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { CommanderError, type Command } from 'commander';
import { z } from 'zod';
import { TasukiError, type Logger } from '../index.js';
import { cliDuration, formatMs, parseCli } from './options.js';

/** The environment variable naming the heartbeat file (the Dockerfile sets it). */
export const HEALTH_FILE_ENV = 'TASUKI_HEALTH_FILE';
/** Exit code of `tasuki health` when the heartbeat is missing or stale. */
export const EXIT_UNHEALTHY = 1;

/** What the heartbeat file holds. */
export interface HealthRecord {
  role: 'worker' | 'beat';
  pid: number;
  /** When the process last found itself healthy (ms since the epoch). */
  at: number;
  /** Beat only: whether it holds the lease. */
  leading?: boolean;
}

/**
 * Writes the heartbeat file every `intervalMs` while `check()` says healthy (atomically: a temporary
 * file renamed over it). Does nothing when no file is configured.
 */
export class HealthBeacon {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string | undefined,
    private readonly role: HealthRecord['role'],
    private readonly check: () => Promise<Omit<HealthRecord, 'role' | 'pid' | 'at'> | false>,
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  start(): void {
    if (!this.file || this.timer) return;
    const beat = async (): Promise<void> => {
      try {
        const ok = await this.check();
        if (ok && this.file) {
          const record: HealthRecord = { role: this.role, pid: process.pid, at: Date.now(), ...ok };
          writeFileSync(`${this.file}.tmp`, JSON.stringify(record) + '\n');
          renameSync(`${this.file}.tmp`, this.file);
        }
      } catch (err) {
        this.log.debug({ err }, 'health check failed; heartbeat file not refreshed');
      }
      if (this.timer) this.timer = setTimeout(() => void beat(), this.intervalMs).unref();
    };
    this.timer = setTimeout(() => void beat(), 0).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The heartbeat file of this process: `--health-file`, else `TASUKI_HEALTH_FILE`, else none. */
export function healthFile(option: string | undefined): string | undefined {
  return option ?? (process.env[HEALTH_FILE_ENV] || undefined);
}

const Options = z.object({ '--max-age': cliDuration() });

export function registerHealth(program: Command): void {
  program
    .command('health')
    .description(
      "exit 0 when this container's worker or beat heartbeat file is fresh (a container health check)",
    )
    .option('--file <path>', `the heartbeat file (default: $${HEALTH_FILE_ENV})`)
    .option('--max-age <duration>', 'older than this is unhealthy', '30s')
    .action((opts: { file?: string; maxAge: string }) => {
      const maxAgeMs = parseCli(Options, { '--max-age': opts.maxAge })['--max-age'];
      const file = healthFile(opts.file);
      if (!file) {
        throw new TasukiError(
          'E_CONFIG',
          `no heartbeat file: pass --file or set ${HEALTH_FILE_ENV} (the same one the worker or beat of this container writes)`,
        );
      }
      let record: HealthRecord;
      try {
        record = JSON.parse(readFileSync(file, 'utf8')) as HealthRecord;
      } catch (err) {
        return unhealthy(
          `no readable heartbeat in ${file} (${(err as Error).message.split('\n')[0]}): the process has not started or never reached Redis`,
        );
      }
      const age = Date.now() - record.at;
      if (!(age <= maxAgeMs)) {
        return unhealthy(
          `the ${record.role} heartbeat in ${file} is ${formatMs(Math.max(0, Math.round(age / 1000) * 1000))} old (more than ${formatMs(maxAgeMs)})`,
        );
      }
      const lead = record.role === 'beat' ? (record.leading ? ', active' : ', standby') : '';
      process.stdout.write(
        `healthy: ${record.role} pid ${record.pid}${lead}, heartbeat ${formatMs(Math.round(age))} old\n`,
      );
    });
}

function unhealthy(why: string): never {
  process.stderr.write(`tasuki: unhealthy: ${why}\n`);
  throw new CommanderError(EXIT_UNHEALTHY, 'tasuki.health.unhealthy', why);
}
