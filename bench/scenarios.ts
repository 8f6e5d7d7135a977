import { performance } from 'node:perf_hooks';
import { payload, type Payload, type Sizes } from './config.js';
import type { Stats } from './redis-info.js';
import { sleep, type Producer, type System, type Target } from './systems/system.js';
import { WorkerProcess } from './worker-process.js';

/** What every measurement gets: the system, the server, the counts. */
export interface Ctx {
  system: System;
  stats: Stats;
  port: number;
  sizes: Sizes;
  /** A fresh queue name for one measurement. */
  queue: (what: string) => string;
  /** tasuki's payload store directory (see {@link Target.payloadDir}). */
  payloadDir: string;
}

const HOST = '127.0.0.1';
const SMALL_LIMIT = 512 * 1024;
const LARGE_LIMIT = 2 * 1024 * 1024;

function target(ctx: Ctx, what: string, maxPayloadBytes = SMALL_LIMIT): Target {
  return { host: HOST, port: ctx.port, queue: ctx.queue(what), maxPayloadBytes, payloadDir: ctx.payloadDir };
}

/** Runs `fn(i)` for i in [0, n) with `inFlight` calls outstanding at any time. */
async function inFlight(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, lane));
}

async function fill(p: Producer, n: number, batch: number, bytes = 0, from = 0): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    const items: Payload[] = [];
    for (let j = i; j < Math.min(n, i + batch); j++) items.push(payload(from + j, bytes));
    await p.enqueueBulk(items);
  }
}

function perSecond(n: number, ms: number): number {
  return n / (ms / 1000);
}

/** `enqueue-single`: jobs/s with `enqueueInFlight` single enqueues outstanding. */
export async function enqueueSingle(ctx: Ctx): Promise<number> {
  await ctx.stats.flush();
  const p = await ctx.system.producer(target(ctx, 'es'), { waitResults: false });
  try {
    const { enqueueTasks: n, enqueueInFlight: width } = ctx.sizes;
    await inFlight(Math.ceil(n / 100), width, (i) => p.enqueue(payload(-1 - i))); // warm-up
    const t0 = performance.now();
    await inFlight(n, width, (i) => p.enqueue(payload(i)));
    return perSecond(n, performance.now() - t0);
  } finally {
    await p.close();
  }
}

/**
 * `enqueue-bulk`: jobs/s in bulk calls of `bulkSize`; `enqueue-bulk-10KB` with 10 KB arguments in
 * calls of 100 (tasuki's go to its payload store: the claim check's cost).
 */
export async function enqueueBulk(ctx: Ctx, bytes = 0): Promise<number> {
  await ctx.stats.flush();
  const p = await ctx.system.producer(target(ctx, `eb${bytes}`), { waitResults: false });
  try {
    const n = bytes ? ctx.sizes.tasks10KB : ctx.sizes.enqueueTasks;
    const bulkSize = bytes ? Math.min(100, ctx.sizes.bulkSize) : ctx.sizes.bulkSize;
    await fill(p, bulkSize, bulkSize, bytes, n); // warm-up
    const t0 = performance.now();
    await fill(p, n, bulkSize, bytes);
    return perSecond(n, performance.now() - t0);
  } finally {
    await p.close();
  }
}

/** Fills a queue, then drains it with one worker child; jobs/s measured inside the worker. */
async function drainOnce(
  ctx: Ctx,
  what: string,
  n: number,
  concurrency: number,
  duringDrain?: { before: () => Promise<void>; after: () => Promise<void> },
  bytes = 0,
): Promise<{ jobsPerSec: number; workerCpuUsPerTask: number }> {
  await ctx.stats.flush();
  const t = target(ctx, what);
  const p = await ctx.system.producer(t, { waitResults: false });
  try {
    await fill(p, n, bytes ? Math.min(100, ctx.sizes.bulkSize) : ctx.sizes.bulkSize, bytes);
  } finally {
    await p.close();
  }
  await duringDrain?.before();
  const warmup = Math.min(ctx.sizes.drainWarmup, Math.floor(n / 10));
  const child = await WorkerProcess.start({ system: ctx.system.name, ...t, concurrency, expect: n, warmup });
  try {
    const r = await child.done();
    await duringDrain?.after();
    if (r.failures) throw new Error(`${ctx.system.name}: ${r.failures} of ${n} tasks failed in ${what}`);
    await child.stop();
    const measured = n - warmup;
    return { jobsPerSec: perSecond(measured, r.elapsedMs), workerCpuUsPerTask: r.cpuUs / measured };
  } finally {
    child.kill();
  }
}

/** `drain-c50-10KB`: drain-c50 with 10 KB arguments (tasuki's from its payload store). */
export async function drainC50Big(ctx: Ctx): Promise<number> {
  return (await drainOnce(ctx, 'd50b', ctx.sizes.tasks10KB, 50, undefined, 10 * 1024)).jobsPerSec;
}

/** `drain-c1`. */
export async function drainC1(ctx: Ctx): Promise<number> {
  return (await drainOnce(ctx, 'd1', ctx.sizes.drainTasks, 1)).jobsPerSec;
}

/**
 * `drain-c50` and `redis-cpu-us-per-task` (Redis CPU over the same drain); also the worker process's
 * own CPU per task, which a shared machine disturbs far less than wall-clock throughput.
 */
export async function drainC50(
  ctx: Ctx,
): Promise<{ jobsPerSec: number; cpuUsPerTask: number; workerCpuUsPerTask: number }> {
  const n = ctx.sizes.drainTasks;
  let cpu0 = 0;
  let cpu1 = 0;
  const r = await drainOnce(ctx, 'd50', n, 50, {
    before: async () => void (cpu0 = await ctx.stats.cpuMicros()),
    after: async () => void (cpu1 = await ctx.stats.cpuMicros()),
  });
  return { ...r, cpuUsPerTask: (cpu1 - cpu0) / n };
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Offers `n` tasks at `rate`/s (open loop) and returns each one's enqueue→completion time, ms. */
async function offer(p: Producer, n: number, rate: number, from: number): Promise<number[]> {
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < n) {
    const due = Math.min(n, Math.floor((performance.now() - t0) / interval) + 1);
    for (; sent < due; sent++) {
      const start = performance.now();
      pending.push(
        p.run(payload(from + sent), 30_000).then(() => void latencies.push(performance.now() - start)),
      );
    }
    await sleep(1);
  }
  await Promise.all(pending);
  return latencies;
}

/** `latency-p50` and `latency-p99`: tasks offered at a fixed rate to one running worker (c=50). */
export async function latency(ctx: Ctx): Promise<{ p50: number; p99: number }> {
  await ctx.stats.flush();
  const t = target(ctx, 'lat');
  const child = await WorkerProcess.start({ system: ctx.system.name, ...t, concurrency: 50, expect: 0 });
  try {
    const p = await ctx.system.producer(t, { waitResults: true });
    try {
      const { latencyTasks: n, latencyWarmup, latencyRatePerSec: rate } = ctx.sizes;
      await offer(p, latencyWarmup, rate, n);
      const sorted = (await offer(p, n, rate, 0)).sort((a, b) => a - b);
      return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
    } finally {
      await p.close();
    }
  } finally {
    await child.stop().catch(() => child.kill());
  }
}

/**
 * `redis-bytes-per-task-*`: `used_memory` growth per waiting task. A warm-up enqueue first loads the
 * system's Lua scripts (a one-off per server, not per task); the producer is closed before each
 * reading so its connection buffers are not counted.
 */
export async function bytesPerTask(ctx: Ctx, bytes: number, n: number): Promise<number> {
  const limit = bytes > SMALL_LIMIT / 2 ? LARGE_LIMIT : SMALL_LIMIT;
  const batch = Math.max(1, Math.min(ctx.sizes.bulkSize, Math.floor((8 << 20) / Math.max(bytes, 1))));
  const t = target(ctx, `b${bytes}`, limit);
  const warm = await ctx.system.producer(t, { waitResults: false });
  await fill(warm, 1, 1, bytes);
  await warm.close();
  await ctx.stats.flush();
  await sleep(100);
  const before = await ctx.stats.usedMemory();
  const p = await ctx.system.producer(t, { waitResults: false });
  try {
    await fill(p, n, batch, bytes);
  } finally {
    await p.close();
  }
  await sleep(200);
  const after = await ctx.stats.usedMemory();
  return (after - before) / n;
}

/** `redis-commands-per-task`: commands Redis ran (inside scripts too) per task, enqueue to result. */
export async function commandsPerTask(
  ctx: Ctx,
): Promise<{ perTask: number; byCommand: Record<string, number> }> {
  await ctx.stats.flush();
  await ctx.stats.resetStats();
  const n = ctx.sizes.commandTasks;
  const t = target(ctx, 'cmd');
  const p = await ctx.system.producer(t, { waitResults: false });
  try {
    await fill(p, n, ctx.sizes.bulkSize);
  } finally {
    await p.close();
  }
  const child = await WorkerProcess.start({ system: ctx.system.name, ...t, concurrency: 50, expect: n });
  try {
    await child.done();
    await child.stop();
  } finally {
    child.kill();
  }
  const stats = await ctx.stats.commandStats();
  let total = 0;
  const byCommand: Record<string, number> = {};
  for (const [name, s] of stats) {
    total += s.calls;
    byCommand[name] = s.calls / n;
  }
  return { perTask: total / n, byCommand };
}
