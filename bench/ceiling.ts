import { spawn } from 'node:child_process';
import { tasukiKeys } from '../src/keys/tasuki-keys.js';
import * as scripts from '../src/scripts/catalogue.js';
import { CEILING_BATCH, CEILING_PIPELINE } from './config.js';
import type { Stats } from './redis-info.js';

/**
 * The ceiling: what this Redis does for tasuki's per-task command mix when clients cost nothing,
 * measured with `redis-benchmark` (50 clients) on the same server, without and with pipelining.
 * Per task tasuki needs one XADD, 1/b of an `XREADGROUP COUNT b` and 1/b of a `finish` script call
 * for b tasks; Redis runs them one at a time, so per-task costs add up. Rows: each command alone,
 * `ceiling-drain-*` (read + finish: the ceiling of a drain) and `ceiling-tasuki-mix-*` (all three).
 */

const KEYS = tasukiKeys('tsk');
const QUEUE = 'ceiling';
const STREAM = KEYS.stream.key({ queue: QUEUE });
const MESSAGE = '["noop",{"i":12345}]';
const RECORD = JSON.stringify({
  state: 'succeeded',
  task: 'noop',
  attempt: 1,
  worker: 'bench-host:12345:abcdef',
  startedAt: 1_764_000_000_000,
  finishedAt: 1_764_000_000_001,
  result: null,
});

export interface CeilingRun {
  /** Row name → value (ops/s, calls/s or jobs/s). */
  values: Map<string, { value: number; unit: string }>;
}

function redisBenchmark(
  port: number,
  n: number,
  pipeline: number,
  command: readonly string[],
): Promise<number> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-n', String(n), '-c', '50', '-P', String(pipeline)];
  args.push('-r', '1000000000', '--csv', ...command);
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      // The test name (the command) may itself hold quotes; rps is the first of the 7 numbers at the end.
      const rps = Number(/"([\d.]+)"(?:,"[\d.]+"){6}$/.exec(last)?.[1]);
      if (code !== 0 || !Number.isFinite(rps) || rps <= 0) {
        reject(new Error(`redis-benchmark ${command[0]} failed (exit ${code}): ${err || out}`));
      } else resolve(rps);
    });
  });
}

/**
 * KEYS and ARGV of one `finish` call for `b` succeeded tasks, built by tasuki's own catalogue (so the
 * layout follows the script). Entry ids, task ids and result keys are redis-benchmark placeholders:
 * the entries do not exist, so the script finds none of them held by the consumer (fenced attempts)
 * and records nothing: one XPENDING instead of its writes. This flatters the ceiling; read
 * `ceiling-drain` as an upper bound.
 */
function finishArgs(b: number): string[] {
  const tasks: scripts.FinishedTask[] = [];
  for (let i = 0; i < b; i++) {
    tasks.push({
      entry: '1-__rand_int__',
      id: '__rand_int__',
      record: RECORD,
      outcome: 'done',
      parked: false,
      dropRecord: false,
      deliveries: 1,
    });
  }
  const resultKey = (task: string): string => KEYS.result.key({ queue: QUEUE, task });
  const k = (name: 'events' | 'parked' | 'delayed' | 'dead' | 'moves'): string =>
    KEYS[name].key({ queue: QUEUE });
  const call = scripts.finish(
    {
      stream: STREAM,
      events: k('events'),
      parked: k('parked'),
      delayed: k('delayed'),
      dead: k('dead'),
      moves: k('moves'),
    },
    {
      group: 'tasuki',
      ttlMs: 86_400_000,
      eventsMaxLen: 10_000,
      deadMaxLen: 10_000,
      deadMinId: '0',
      consumer: 'bench',
      tasks,
      resultKey,
    },
  );
  return [String(call.keys.length), ...call.keys, ...call.args.map(String)];
}

/** One ceiling session: XADD, XREADGROUP COUNT b and the finish script, each at P1 and P16. */
export async function ceiling(stats: Stats, port: number, n: number): Promise<CeilingRun> {
  const b = CEILING_BATCH;
  await stats.flush();
  const redis = stats.client;
  await redis.xgroup('CREATE', STREAM, 'tasuki', '$', 'MKSTREAM');
  const sha = (await redis.script('LOAD', scripts.scriptSource('finish'))) as string;
  const finishCall = ['EVALSHA', sha, ...finishArgs(b)];
  const read = ['XREADGROUP', 'GROUP', 'tasuki', 'c1', 'COUNT', String(b), 'STREAMS', STREAM, '>'];
  const values = new Map<string, { value: number; unit: string }>();
  const xadd: Record<number, number> = {};
  // Both XADD runs first: together they leave 2n entries, more than the reads below take.
  for (const p of [1, CEILING_PIPELINE])
    xadd[p] = await redisBenchmark(port, n, p, ['XADD', STREAM, '*', 'm', MESSAGE]);
  const reads = Math.floor((0.8 * n) / b);
  for (const p of [1, CEILING_PIPELINE]) {
    const xr = await redisBenchmark(port, reads, p, read);
    const fin = await redisBenchmark(port, Math.ceil(n / b), p, finishCall);
    const x = xadd[p] as number;
    const drainUs = 1e6 / (xr * b) + 1e6 / (fin * b);
    values.set(`ceiling-xadd-P${p}`, { value: x, unit: 'ops/s' });
    values.set(`ceiling-xreadgroup-count${b}-P${p}`, { value: xr, unit: 'calls/s' });
    values.set(`ceiling-finish-${b}-P${p}`, { value: fin, unit: 'calls/s' });
    values.set(`ceiling-drain-P${p}`, { value: 1e6 / drainUs, unit: 'jobs/s' });
    values.set(`ceiling-tasuki-mix-P${p}`, { value: 1e6 / (1e6 / x + drainUs), unit: 'jobs/s' });
  }
  return { values };
}
