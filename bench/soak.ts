/**
 * The soak run (issue 18, point 5; not in CI): tasks offered at a fixed rate for a long time while
 * worker processes are stopped (SIGTERM) and killed (SIGKILL) now and then, with Redis memory,
 * worker memory, latency percentiles and task counts sampled over time. It ends by accounting for
 * every task it enqueued (each completed once, none lost) and writes a JSON file and an SVG chart.
 *
 *   npm run bench:soak -- [--minutes 60] [--rate 200] [--workers 2] [--concurrency 20]
 *                         [--restart-every 5m] [--sample 10s] [--svg docs/soak.svg]
 *                         [--json bench/results/soak.json]
 *
 * The workers are real `tasuki worker` processes (bin/tasuki.js, the built package) serving the app
 * in bench/soak/app.ts with metrics on; the soak itself enqueues one task at a time, as a web
 * process would, and follows completions through `app.subscribe()`. Redis is a throw-away
 * redis-server child with appendonly on (as production would be), unless TASUKI_REDIS_URL is set.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EmbeddedRedis } from 'tasuki';
import { toMs } from '../src/util/duration.js';
import { percentile, writeSoakChart, type SoakMark, type SoakSample } from './soak/chart.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const { values: argv } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    rate: { type: 'string', default: '200' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '20' },
    'restart-every': { type: 'string', default: '5m' },
    sample: { type: 'string', default: '10s' },
    svg: { type: 'string', default: 'docs/soak.svg' },
    json: { type: 'string', default: 'bench/results/soak.json' },
  },
});
const MINUTES = Number(argv.minutes);
const RATE = Number(argv.rate);
const WORKERS = Number(argv.workers);
const CONCURRENCY = Number(argv.concurrency);
function duration(text: string, flag: string): number {
  const ms = toMs(/^\d+$/.test(text) ? Number(text) : text);
  if (ms === undefined || ms <= 0)
    throw new Error(`${flag}: "${text}" is not a duration (e.g. 5m, 10s, 500ms)`);
  return ms;
}
const RESTART_EVERY_MS = duration(argv['restart-every'], '--restart-every');
const SAMPLE_MS = duration(argv.sample, '--sample');
/** How long the soak waits at the end for the last tasks (a killed worker's are reclaimed after 10 s). */
const DRAIN_MS = 120_000;

const embedded = process.env.TASUKI_REDIS_URL ? undefined : await EmbeddedRedis.start({ appendonly: true });
if (embedded) process.env.TASUKI_REDIS_URL = embedded.url;
const logDir = join(tmpdir(), `tasuki-soak-${process.pid}`);
mkdirSync(logDir, { recursive: true });

// Imported only now: the app reads TASUKI_REDIS_URL.
const { app, work } = await import('./soak/app.js');
const redis = await app.redis();

// ---- workers -------------------------------------------------------------------------------------

interface WorkerSlot {
  child: ChildProcess;
  /** How many processes this slot has had (for log file names). */
  generation: number;
}

const slots: WorkerSlot[] = [];
let workerErrorLines = 0;

function startWorker(index: number, generation: number): WorkerSlot {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'bin/tasuki.js'),
      'worker',
      '--app',
      join(ROOT, 'bench/soak/app.ts'),
      '--concurrency',
      String(CONCURRENCY),
      '--claim-idle',
      '10s',
      '--grace',
      '10s',
      '--metrics-port',
      '0',
    ],
    { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = createWriteStream(join(logDir, `worker-${index}-${generation}.log`));
  child.stdout?.pipe(log);
  child.stderr?.on('data', (d: Buffer) => {
    log.write(d);
    workerErrorLines += d
      .toString()
      .split('\n')
      .filter((l) => l.trim()).length;
  });
  return { child, generation };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function rssMB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) / 1024;
  } catch {
    return 0; // between exit and restart
  }
}

// ---- completions ---------------------------------------------------------------------------------

/** Enqueue time (ms since the epoch) of every task not yet seen completing. */
const pending = new Map<string, number>();
/** Completions that arrived before their enqueue resolved: id → finishedAt. */
const early = new Map<string, number>();
const completed = new Set<string>();
let duplicates = 0;
let failedEvents = 0;
let windowLatencies: number[] = [];
const allLatencies: number[] = [];

function complete(id: string, finishedAt: number): void {
  if (completed.has(id)) {
    duplicates++;
    return;
  }
  const sentAt = pending.get(id);
  if (sentAt === undefined) {
    early.set(id, finishedAt);
    return;
  }
  pending.delete(id);
  completed.add(id);
  const latency = finishedAt - sentAt;
  windowLatencies.push(latency);
  allLatencies.push(latency);
}

const subscription = app.subscribe(['soak']);
subscription.on('succeeded', (e) => complete(e.id, e.finishedAt));
subscription.on('retried', () => failedEvents++);
subscription.on('dead', () => failedEvents++);
await subscription.ready;

// ---- the run -------------------------------------------------------------------------------------

for (let i = 0; i < WORKERS; i++) slots.push(startWorker(i, 0));

const started = Date.now();
const endAt = started + MINUTES * 60_000;
let sent = 0;
let enqueueErrors = 0;
const enqueueErrorCodes = new Map<string, number>();
const pad = 'x'.repeat(64);

const producer = setInterval(() => {
  const due = Math.min(Math.floor(((Date.now() - started) / 1000) * RATE), MINUTES * 60 * RATE);
  for (; sent < due; sent++) {
    const sentAt = Date.now();
    work.enqueue({ n: sent, ms: sent % 11, pad }).then(
      (handle) => {
        const finishedAt = early.get(handle.id);
        pending.set(handle.id, sentAt);
        if (finishedAt !== undefined) {
          early.delete(handle.id);
          complete(handle.id, finishedAt);
        }
      },
      (err: unknown) => {
        enqueueErrors++;
        const code = (err as { code?: string }).code ?? String(err);
        enqueueErrorCodes.set(code, (enqueueErrorCodes.get(code) ?? 0) + 1);
      },
    );
  }
}, 20);

const samples: SoakSample[] = [];
const marks: SoakMark[] = [];
let lastCompleted = 0;
let lastSent = 0;

async function sample(): Promise<void> {
  const info = await redis.info('memory');
  const usedMB = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 1024 / 1024;
  const stats = await app.queueStats('soak');
  const latencies = windowLatencies;
  windowLatencies = [];
  const s: SoakSample = {
    t: (Date.now() - started) / 1000,
    redisMB: usedMB,
    workerMB: slots.map((slot) => rssMB(slot.child.pid)).reduce((a, b) => a + b, 0) / slots.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    enqueuedPerSec: (sent - lastSent) / (SAMPLE_MS / 1000),
    completedPerSec: (completed.size - lastCompleted) / (SAMPLE_MS / 1000),
    backlog: stats.waiting + stats.active + stats.delayed,
  };
  lastSent = sent;
  lastCompleted = completed.size;
  samples.push(s);
  process.stdout.write(
    `${(s.t / 60).toFixed(1).padStart(5)} min  redis ${s.redisMB.toFixed(1)} MB  worker ${s.workerMB.toFixed(0)} MB  ` +
      `p50 ${s.p50.toFixed(1)} ms  p99 ${s.p99.toFixed(1)} ms  in ${s.enqueuedPerSec.toFixed(0)}/s  ` +
      `out ${s.completedPerSec.toFixed(0)}/s  backlog ${s.backlog}\n`,
  );
}

const sampler = setInterval(
  () => void sample().catch((err: unknown) => console.error('sample failed:', err)),
  SAMPLE_MS,
);

let restarts = 0;
const restarter = setInterval(() => {
  const index = restarts % WORKERS;
  const signal = restarts % 2 === 0 ? 'SIGTERM' : 'SIGKILL';
  restarts++;
  const slot = slots[index] as WorkerSlot;
  marks.push({ t: (Date.now() - started) / 1000, label: signal === 'SIGTERM' ? 'stop' : 'kill' });
  slot.child.kill(signal);
  void exited(slot.child).then(() => {
    slots[index] = startWorker(index, slot.generation + 1);
  });
}, RESTART_EVERY_MS);

await new Promise((resolve) => setTimeout(resolve, endAt - Date.now()));
clearInterval(producer);
clearInterval(restarter);

// ---- accounting ----------------------------------------------------------------------------------

const drainDeadline = Date.now() + DRAIN_MS;
while (
  (pending.size > 0 || sent !== completed.size + pending.size + enqueueErrors + early.size) &&
  Date.now() < drainDeadline
) {
  await new Promise((resolve) => setTimeout(resolve, 500));
}
clearInterval(sampler);
await sample();

// Events are at-most-once per subscriber: a task whose event was missed is looked up by id.
let missedEvents = 0;
let lost = 0;
for (const id of [...pending.keys()]) {
  const info = await app.getTask(id);
  if (info?.state === 'succeeded') missedEvents++;
  else lost++;
}

await Promise.all(
  slots.map((slot) => {
    slot.child.kill('SIGTERM');
    return exited(slot.child);
  }),
);
await subscription.close();
await app.close();
await embedded?.destroy();

const minutesOf = (from: number, to: number): SoakSample[] =>
  samples.filter((s) => s.t >= from * 60 && s.t < to * 60 && s.enqueuedPerSec > 0);
const median = (xs: number[]): number => percentile(xs, 0.5);
const head = minutesOf(1, Math.max(2, MINUTES * 0.2));
const tail = minutesOf(MINUTES * 0.8, MINUTES);
const summary = {
  minutes: MINUTES,
  rate: RATE,
  workers: WORKERS,
  concurrency: CONCURRENCY,
  restarts,
  enqueued: sent - enqueueErrors,
  enqueueErrors,
  enqueueErrorCodes: Object.fromEntries(enqueueErrorCodes),
  completed: completed.size + missedEvents,
  missedEvents,
  lost,
  duplicates,
  failedEvents,
  workerStderrLines: workerErrorLines,
  latencyMs: {
    p50: percentile(allLatencies, 0.5),
    p99: percentile(allLatencies, 0.99),
    max: allLatencies.reduce((a, b) => (b > a ? b : a), 0),
  },
  redisMB: { start: median(head.map((s) => s.redisMB)), end: median(tail.map((s) => s.redisMB)) },
  workerMB: { start: median(head.map((s) => s.workerMB)), end: median(tail.map((s) => s.workerMB)) },
  p99Ms: { start: median(head.map((s) => s.p99)), end: median(tail.map((s) => s.p99)) },
  logs: logDir,
};
mkdirSync(dirname(argv.json), { recursive: true });
writeFileSync(argv.json, JSON.stringify({ summary, marks, samples }, null, 1) + '\n');
writeSoakChart(argv.svg, samples, marks, summary);
console.log(JSON.stringify(summary, null, 2));
console.log(`wrote ${argv.json} and ${argv.svg}`);
process.exitCode = lost === 0 && summary.enqueued === summary.completed ? 0 : 1;
