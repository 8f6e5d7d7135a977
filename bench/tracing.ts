/**
 * Tracing benchmark: what the `tracing` option costs per task, and that an app without it pays
 * nothing. One process, a throw-away redis-server; per round N single enqueues (100 in flight), then
 * a drain by one in-process worker (concurrency 50). Prints enqueues/s, drains/s and CPU µs per task
 * (this process: producer + worker), medians over the rounds, for each mode:
 *
 * - `off`: no tracing option (the hot path every untraced app runs);
 * - `on`: `openTelemetry()` with the SDK's BasicTracerProvider, an in-memory exporter and the
 *   AsyncLocalStorage context manager (a real SDK; exporting over the network would add its own cost).
 *
 *   node --import tsx bench/tracing.ts [--tasks 20000] [--rounds 5] [--modes off,on] [--src DIR]
 *
 * `--src DIR`: import tasuki from DIR/src (another checkout, e.g. the commit before tracing) for `off`.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { openTelemetry } from '../src/tracing/index.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'off,on' },
    src: { type: 'string' },
  },
});
const TASKS = Number(values.tasks);
const ROUNDS = Number(values.rounds);
const MODES = (values.modes ?? 'off,on').split(',');
const root = values.src ? resolve(values.src) : resolve(import.meta.dirname, '..');
type Lib = typeof import('../src/index.js');
const lib = (await import(pathToFileURL(`${root}/src/index.ts`).href)) as Lib;
const silent = (await import(pathToFileURL(`${root}/src/log/logger.ts`).href)) as {
  silentLogger: () => import('../src/log/logger.js').Logger;
};

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function round(redisUrl: string, mode: string, n: number): Promise<[number, number, number]> {
  const app = lib.tasuki({
    redis: redisUrl,
    prefix: `b${n}${mode}`,
    logger: silent.silentLogger(),
    ...(mode === 'on' ? { tracing: openTelemetry() } : {}),
  });
  const task = app.task({ name: 'noop', schema: z.object({ i: z.number() }), handler: ({ i }) => i });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < TASKS; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, TASKS - i) }, (_, j) => task.enqueue({ i: i + j })));
  }
  const t1 = performance.now();
  const worker = new lib.Worker(app, { concurrency: 50, logger: silent.silentLogger() });
  let done = 0;
  const all = new Promise<void>((r) => worker.on('task', () => ++done === TASKS && r()));
  await worker.start();
  await all;
  const t2 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await worker.stop();
  await (await app.redis()).flushdb();
  await app.close();
  exporter.reset();
  return [TASKS / ((t1 - t0) / 1000), TASKS / ((t2 - t1) / 1000), (cpu.user + cpu.system) / TASKS];
}

const redis = await EmbeddedRedis.start();
try {
  const figures = new Map<string, [number, number, number][]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of MODES) {
      const f = await round(redis.url, mode, r);
      figures.set(mode, [...(figures.get(mode) ?? []), f]);
    }
  }
  for (const [mode, rows] of figures) {
    const [enq, drain, cpu] = [0, 1, 2].map((k) => median(rows.map((row) => row[k] as number)));
    console.log(
      `${mode.padEnd(4)} enqueue ${Math.round(enq as number)}/s  drain ${Math.round(drain as number)}/s  CPU ${(cpu as number).toFixed(1)} µs/task  (${root})`,
    );
  }
} finally {
  await redis.stop();
}
