/**
 * Beat processes for tests: `tasuki beat` children on the test Redis, their log lines as JSON, and
 * the ticks they enqueued read back from the queue's stream.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { tasukiKeys } from '../../src/index.js';
import { spawnCli } from '../support/cli.js';
import { EXPIRES_MS } from './fixtures/app.js';

export const FIXTURE_APP = fileURLToPath(new URL('./fixtures/app.ts', import.meta.url));

/** A running `tasuki beat` and everything it logged. */
export interface BeatProcess {
  child: ChildProcess;
  name: string;
  lines: Record<string, unknown>[];
  exited: Promise<unknown>;
  /** Resolves once a line with this `msg` has been logged `count` times in all. */
  logged(msg: string, count?: number): Promise<void>;
  count(msg: string): number;
}

const children: ChildProcess[] = [];

/** Kills every beat still running (call in `after`). */
export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
  }
}

/** Starts `tasuki beat` on the fixture app with a short lease. */
export function startBeat(
  name: string,
  env: Record<string, string>,
  args: string[] = ['--lease', '1s', '--standby-interval', '100ms', '--refresh', '200ms'],
): BeatProcess {
  const child = spawnCli(['beat', '--app', FIXTURE_APP, ...args], env);
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; count: number; resolve: () => void }[] = [];
  const count = (msg: string): number => lines.filter((l) => l.msg === msg).length;
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line });
    }
    for (const w of [...waiters]) {
      if (count(w.msg) >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  // 'close', not 'exit': every line the beat wrote has been read by then.
  const exited = once(child, 'close');
  return {
    child,
    name,
    lines,
    exited,
    count,
    logged: (msg, n = 1) =>
      count(msg) >= n
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ msg, count: n, resolve });
            void exited.then(() =>
              reject(new Error(`beat ${name} exited before logging "${msg}": ${stderr}`)),
            );
          }),
  };
}

/** The tick times (ms) of the fixture schedule's tasks in the queue, in stream order. */
export async function enqueuedTicks(redis: Redis, prefix: string, queue = 'default'): Promise<number[]> {
  const entries = await redis.xrange(tasukiKeys(prefix).stream.key({ queue }), '-', '+');
  return entries.map(([, fields]) => {
    const [, , meta] = JSON.parse(fields[1] as string) as [string, unknown, { x: number }];
    return meta.x - EXPIRES_MS;
  });
}

/** Resolves when the queue holds at least `n` tasks. */
export async function untilTasks(redis: Redis, prefix: string, n: number, timeoutMs = 30_000): Promise<void> {
  const key = tasukiKeys(prefix).stream.key({ queue: 'default' });
  const deadline = Date.now() + timeoutMs;
  while ((await redis.xlen(key)) < n) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${n} tasks (have ${await redis.xlen(key)})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const TAKEN = 'lease taken: this beat is active';
const STEPPED_DOWN = [
  'lease lost (not renewed in time): standing by',
  'a newer lease claimed this schedule: standing by',
];

function lastIndex(b: BeatProcess, msgs: readonly string[]): number {
  for (let i = b.lines.length - 1; i >= 0; i--) if (msgs.includes(b.lines[i]?.msg as string)) return i;
  return -1;
}

/** The live beat that took the lease and has not logged stepping down since; `undefined` unless exactly one. */
export function leaderOf(beats: readonly BeatProcess[]): BeatProcess | undefined {
  const leading = beats.filter(
    (b) =>
      b.child.exitCode === null &&
      b.child.signalCode === null &&
      lastIndex(b, [TAKEN]) > lastIndex(b, STEPPED_DOWN),
  );
  return leading.length === 1 ? leading[0] : undefined;
}

/** Resolves the leader once exactly one beat leads. */
export async function untilLeader(beats: readonly BeatProcess[], timeoutMs = 30_000): Promise<BeatProcess> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = leaderOf(beats);
    if (l) return l;
    if (Date.now() > deadline) throw new Error('timed out waiting for one beat to lead');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Checks a run of per-second ticks: no tick twice, every gap one second except at most `gaps` gaps of
 * at most `maxGapMs` (failovers). Returns the gaps over one second.
 */
export function checkTicks(ticks: readonly number[], maxGapMs: number): number[] {
  const sorted = [...ticks].sort((a, b) => a - b);
  if (new Set(sorted).size !== sorted.length) {
    const dup = sorted.filter((t, i) => sorted[i - 1] === t);
    throw new Error(`ticks enqueued twice: ${dup.map((t) => new Date(t).toISOString()).join(', ')}`);
  }
  const long: number[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const gap = (sorted[i] as number) - (sorted[i - 1] as number);
    if (gap % 1000 !== 0) throw new Error(`tick ${sorted[i]} is not on a whole second`);
    if (gap > maxGapMs)
      throw new Error(`a gap of ${gap} ms between ticks is over the failover bound ${maxGapMs} ms`);
    if (gap > 1000) long.push(gap);
  }
  return long;
}

/** Resolves once `b` has stepped down (lease lost, or a newer lease seen) since it last took the lease. */
export async function untilSteppedDown(b: BeatProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (lastIndex(b, STEPPED_DOWN) < lastIndex(b, [TAKEN])) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for beat ${b.name} to stand by`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Redis's clock now, in ms (the clock stream entry ids are written with). */
export async function redisMs(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/**
 * Ids of the tasks `b` enqueued (from its `tick enqueued` lines) whose stream entries were written at
 * or after `fromMs` on Redis's clock. A line logged late (the process was stopped between Redis's
 * reply and the log) does not count: what counts is when Redis wrote the task.
 */
export async function enqueuedBySince(
  redis: Redis,
  prefix: string,
  b: BeatProcess,
  fromMs: number,
): Promise<string[]> {
  const mine = new Set(b.lines.filter((l) => l.msg === 'tick enqueued').map((l) => l.taskId as string));
  const entries = await redis.xrange(tasukiKeys(prefix).stream.key({ queue: 'default' }), fromMs, '+');
  return entries.map(([id]) => `${id}@default`).filter((id) => mine.has(id));
}
