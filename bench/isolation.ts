/**
 * Isolation benchmark: what running a handler in a thread or a child process costs per task, against
 * the same handler in the worker's event loop, and what it gains for CPU-bound handlers. One worker
 * in this process, a throw-away redis-server.
 *
 *   node --import tsx bench/isolation.ts [--tasks 400] [--rounds 5] [--concurrency 2] [--cpu-ms 50]
 *
 * Figures (medians over the rounds):
 * - cold start: the first task of a fresh worker (the isolate starts and loads the app module);
 * - latency: one task at a time, enqueue to result, median of `--tasks / 4` tasks;
 * - throughput: `--tasks` trivial tasks enqueued at once, tasks/s;
 * - CPU-bound: `--concurrency * 4` tasks spinning `--cpu-ms` each, tasks/s (in-loop they run one at
 *   a time whatever the concurrency; isolated they use the cores).
 */
import { parseArgs } from 'node:util';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { tasuki, Worker } from '../src/index.js';
import { silentLogger } from '../src/log/logger.js';
import { define, MODES, type Mode } from './isolation/app.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '2' },
    'cpu-ms': { type: 'string', default: '50' },
  },
});
const TASKS = Number(values.tasks);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const CPU_MS = Number(values['cpu-ms']);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Figures {
  coldMs: number;
  latencyMs: number;
  perSecond: number;
  cpuPerSecond: number;
}

async function round(url: string, mode: Mode, n: number): Promise<Figures> {
  const app = tasuki({ redis: url, prefix: `bench-iso-${mode}-${n}`, logger: silentLogger() });
  const task = define(app)[mode];
  const worker = new Worker(app, { concurrency: CONCURRENCY, logger: silentLogger() });
  await worker.start();
  try {
    let t0 = performance.now();
    await (await task.enqueue({ ms: 0 })).result({ timeout: '120s' });
    const coldMs = performance.now() - t0;
    // Every isolate of the pool started, so the figures below are warm.
    await Promise.all(
      (await task.enqueueMany(Array.from({ length: CONCURRENCY * 2 }, () => ({ args: { ms: 0 } })))).map(
        (h) => h.result({ timeout: '120s' }),
      ),
    );
    const latencies: number[] = [];
    for (let i = 0; i < Math.max(10, TASKS / 4); i++) {
      t0 = performance.now();
      await (await task.enqueue({ ms: 0 })).result({ timeout: '60s' });
      latencies.push(performance.now() - t0);
    }
    t0 = performance.now();
    const many = await task.enqueueMany(Array.from({ length: TASKS }, () => ({ args: { ms: 0 } })));
    await Promise.all(many.map((h) => h.result({ timeout: '120s' })));
    const perSecond = TASKS / ((performance.now() - t0) / 1000);
    const cpuTasks = CONCURRENCY * 4;
    t0 = performance.now();
    const cpu = await task.enqueueMany(Array.from({ length: cpuTasks }, () => ({ args: { ms: CPU_MS } })));
    await Promise.all(cpu.map((h) => h.result({ timeout: '120s' })));
    const cpuPerSecond = cpuTasks / ((performance.now() - t0) / 1000);
    return { coldMs, latencyMs: median(latencies), perSecond, cpuPerSecond };
  } finally {
    await worker.stop();
    await app.close();
  }
}

const redis = await EmbeddedRedis.start();
try {
  // Rounds outermost and modes within each, so a burst of load elsewhere on the machine falls on
  // every mode alike rather than on one.
  const rounds = new Map<Mode, Figures[]>(MODES.map((m) => [m, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of MODES) rounds.get(mode)?.push(await round(redis.url, mode, r));
  }
  const results = new Map<Mode, Figures>();
  for (const [mode, list] of rounds) {
    results.set(mode, {
      coldMs: median(list.map((f) => f.coldMs)),
      latencyMs: median(list.map((f) => f.latencyMs)),
      perSecond: median(list.map((f) => f.perSecond)),
      cpuPerSecond: median(list.map((f) => f.cpuPerSecond)),
    });
  }
  const base = results.get('in-loop') as Figures;
  const fmt = (x: number, d = 1): string => x.toFixed(d);
  console.log(
    `isolation benchmark: ${TASKS} tasks, ${ROUNDS} rounds (medians), concurrency ${CONCURRENCY}, ` +
      `CPU-bound tasks of ${CPU_MS} ms, Node ${process.version}, ${(await import('node:os')).cpus().length} cores`,
  );
  console.log(
    '| mode | cold start (ms) | latency (ms) | vs in-loop | trivial tasks/s | vs in-loop | CPU-bound tasks/s | vs in-loop |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [mode, f] of results) {
    console.log(
      `| ${mode} | ${fmt(f.coldMs, 0)} | ${fmt(f.latencyMs, 2)} | ${fmt(f.latencyMs / base.latencyMs, 2)}x | ` +
        `${fmt(f.perSecond, 0)} | ${fmt(f.perSecond / base.perSecond, 2)}x | ${fmt(f.cpuPerSecond, 1)} | ` +
        `${fmt(f.cpuPerSecond / base.cpuPerSecond, 2)}x |`,
    );
  }
  const signed = (x: number): string => `${x >= 0 ? '+' : ''}${fmt(x, 2)} ms`;
  console.log(
    `overhead per task (latency, median): thread ${signed((results.get('thread') as Figures).latencyMs - base.latencyMs)}, ` +
      `process ${signed((results.get('process') as Figures).latencyMs - base.latencyMs)}`,
  );
} finally {
  await redis.stop();
}
