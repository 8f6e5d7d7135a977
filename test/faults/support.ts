// Helpers shared by the fault tests: worker processes on the fault app, run files, Redis at maxmemory,
// and a logger that keeps its lines for assertions.
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Logger } from '../../src/index.js';
import type { TestRedis } from '../../src/testing/index.js';
import { finished, spawnCli, waitForOutput } from '../support/cli.js';
import type { WorkerProcess } from '../support/workers.js';

/** A fresh temp dir for a test's run file and gates. */
export function scratch(): { dir: string; runs: string; gate: (name: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'tasuki-faults-'));
  return { dir, runs: join(dir, 'runs'), gate: (name) => join(dir, `gate-${name}`) };
}

/** Lines of a run file (`start 3 <pid>`, `end 3 <pid>`...), or none. */
export function runLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

/** Starts `tasuki worker` on test/faults/fixtures/fault-app.ts and waits until it has started. */
export async function startFaultWorker(
  redis: TestRedis,
  prefix: string,
  runs: string,
  args: string[] = [],
): Promise<WorkerProcess> {
  const child = spawnCli(['worker', '--app', 'test/faults/fixtures/fault-app.ts', ...args], {
    REDIS_URL: redis.url,
    TEST_PREFIX: prefix,
    RUNS_FILE: runs,
    TASUKI_LOG_LEVEL: 'info',
  });
  const done = finished(child, 120_000);
  await waitForOutput(child, /worker started|"level":[5-6]0/, 30_000).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`worker did not start: ${(err as Error).message}\n${(await done).stderr}`);
  });
  return { child, done };
}

/**
 * Puts Redis over maxmemory (noeviction): writes ~4 MB, then sets maxmemory 2 MB below what is used
 * (room for buffers that shrink meanwhile), so every command that may grow memory is refused ("OOM command not allowed").
 */
export async function fillUntilOom(redis: Redis, prefix: string): Promise<void> {
  const big = 'x'.repeat(64 * 1024);
  const fill = redis.pipeline();
  for (let i = 0; i < 64; i++) fill.set(`${prefix}:fill:${i}`, big);
  await fill.exec();
  const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
  await redis.config('SET', 'maxmemory-policy', 'noeviction');
  await redis.config('SET', 'maxmemory', String(used - 2 * 1024 * 1024));
  await assertOom(redis);
}

/** Ends the out-of-memory state. */
export async function liftOom(redis: Redis): Promise<void> {
  await redis.config('SET', 'maxmemory', '0');
}

export async function assertOom(redis: Redis): Promise<void> {
  let refused = false;
  await redis.set('oom-probe', 'x'.repeat(1024)).catch((err: unknown) => {
    refused = /OOM/.test(String(err));
  });
  if (!refused) throw new Error('Redis is not refusing writes (not at maxmemory)');
}

/** A JSON log line. */
export type LogLine = Record<string, unknown> & { msg: string; level: number };

/** A logger that keeps every line (info and up) in `lines`. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Resolves after `ms`: only where a test must show that something does NOT happen for a while. */
export function quiet(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A worker's counts of finished attempts by outcome (the fields these tests assert on). */
export function outcomes(w: {
  counts: { succeeded: number; failed: number; retried: number; expired: number };
}): {
  succeeded: number;
  failed: number;
  retried: number;
  expired: number;
} {
  const { succeeded, failed, retried, expired } = w.counts;
  return { succeeded, failed, retried, expired };
}
