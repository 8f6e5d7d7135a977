/**
 * The incident of ../shared/seeds/BRIEF.md, replayed on this machine: a Redis with `maxmemory` and
 * `noeviction`, tasks with 10 KB arguments enqueued as fast as a producer can while a worker runs.
 *
 *   node --import tsx bench/incident.ts [--tasks 20000] [--arg-kb 10] [--maxmemory-mb 64]
 *
 * Twice: with the claim check (arguments in a filesystem payload store, the message carries a
 * reference and a SHA-256) and without it (arguments inline). Prints, for each, what Redis grew by
 * per task, whether Redis ever refused a write itself (OOM), what the producer was told, and
 * whether every accepted task completed. `test/limits/incident.test.ts` runs a small replay and
 * checks the same figures; docs/memory.md quotes the script's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createLogger, MemoryFullError, tasuki, Worker, type TaskHandle } from 'tasuki';
import { TestRedis } from 'tasuki/testing';

/** How one replay went. */
export interface ReplayReport {
  claimCheck: boolean;
  /** Tasks the producer offered, and how many Redis took. */
  offered: number;
  accepted: number;
  /** Enqueues refused with the typed, retryable `E_MEMORY_FULL` (the memory guard, or Redis's own OOM). */
  refusedMemoryFull: number;
  /** Any other enqueue error (there should be none), as messages. */
  otherErrors: string[];
  /** Tasks the worker completed (succeeded), and tasks left in the stream at the end. */
  completed: number;
  leftInStream: number;
  /** Redis `used_memory` growth over the run, per accepted task, bytes (results are not stored). */
  growthPerTask: number;
  /** Highest `used_memory` seen, as a fraction of `maxmemory`. */
  peakFraction: number;
  /** Redis refused a write itself (`rejected_calls` for OOM / `errorstat_OOM`). */
  redisRefusedWrites: number;
  elapsedMs: number;
}

export interface ReplayOptions {
  claimCheck: boolean;
  tasks: number;
  argBytes?: number;
  maxmemoryMb?: number;
  /** Tasks per `enqueueMany` call. */
  chunk?: number;
  /** How long the memory guard holds an enqueue before refusing it, ms (a producer's patience). */
  maxWaitMs?: number;
  /** Stop offering after this many refusals in a row. */
  stopAfterRefusals?: number;
  /** How long the handler takes, ms: the worker drains slower than the producer fills, as in the incident. */
  handlerMs?: number;
}

async function usedMemory(redis: ReturnType<TestRedis['client']>): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

async function oomErrors(redis: ReturnType<TestRedis['client']>): Promise<number> {
  return Number(/errorstat_OOM:count=(\d+)/.exec(await redis.info('errorstats'))?.[1] ?? 0);
}

/** One replay on a throw-away redis-server. */
export async function replayIncident(o: ReplayOptions): Promise<ReplayReport> {
  const argBytes = o.argBytes ?? 10 * 1024;
  const maxmemoryMb = o.maxmemoryMb ?? 64;
  const chunk = o.chunk ?? 100;
  const handlerMs = o.handlerMs ?? 2;
  const redis = await TestRedis.start({
    args: ['--maxmemory', `${maxmemoryMb}mb`, '--maxmemory-policy', 'noeviction'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'tasuki-incident-'));
  const admin = redis.client();
  const app = tasuki({
    redis: redis.url,
    logger: createLogger({ level: 'silent' }),
    // A web request cannot wait long for headroom (the incident's producers were web requests).
    memoryGuard: { maxWait: o.maxWaitMs ?? 20, sampleInterval: 100 },
    // Without the claim check the arguments stay inline (as in the incident), up to 1 MB each.
    payloads: o.claimCheck ? { store: dir } : { inlineLimit: 1024 * 1024 },
  });
  // The incident's tasks: an upload to process, nobody reads the result.
  const upload = app.task({
    name: 'upload.process',
    schema: z.object({ customer: z.string(), data: z.string() }),
    storeResult: false,
    handler: async ({ data }) => {
      await new Promise((r) => setTimeout(r, handlerMs));
      return data.length;
    },
  });
  const worker = new Worker(app, { concurrency: 4 });
  const t0 = Date.now();
  const report: ReplayReport = {
    claimCheck: o.claimCheck,
    offered: 0,
    accepted: 0,
    refusedMemoryFull: 0,
    otherErrors: [],
    completed: 0,
    leftInStream: 0,
    growthPerTask: 0,
    peakFraction: 0,
    redisRefusedWrites: 0,
    elapsedMs: 0,
  };
  try {
    await app.redis();
    await upload.enqueue({ customer: 'warm-up', data: 'x' }); // scripts loaded, stream and group made
    await worker.start();
    while (worker.counts.succeeded < 1 || worker.holding > 0) await new Promise((r) => setTimeout(r, 5));
    const baseline = await usedMemory(admin);
    const oomBefore = await oomErrors(admin);
    let peak = baseline;
    const sampler = setInterval(() => {
      void usedMemory(admin).then((used) => (peak = Math.max(peak, used)));
    }, 20);
    const data = 'x'.repeat(argBytes);
    let refusalsInARow = 0;
    const handles: TaskHandle<unknown>[] = [];
    while (report.offered < o.tasks && refusalsInARow < (o.stopAfterRefusals ?? 3)) {
      const n = Math.min(chunk, o.tasks - report.offered);
      report.offered += n;
      try {
        const batch = Array.from({ length: n }, (_, i) => ({
          args: { customer: `customer-${(report.offered + i) % 1000}`, data },
        }));
        handles.push(...(await upload.enqueueMany(batch)));
        report.accepted += n;
        refusalsInARow = 0;
      } catch (err) {
        if (err instanceof MemoryFullError) report.refusedMemoryFull += n;
        else report.otherErrors.push(String(err));
        refusalsInARow++;
      }
    }
    // Every accepted task completes: the worker drains what Redis took.
    const deadline = Date.now() + 120_000;
    while ((worker.counts.succeeded - 1 < report.accepted || worker.holding > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    clearInterval(sampler);
    report.completed = worker.counts.succeeded - 1;
    report.leftInStream = await admin.xlen(app.keys.stream.key({ queue: 'default' }));
    report.growthPerTask = report.accepted ? ((await usedMemory(admin)) - baseline) / report.accepted : 0;
    report.peakFraction = peak / (maxmemoryMb * 1024 * 1024);
    report.redisRefusedWrites = (await oomErrors(admin)) - oomBefore;
    report.elapsedMs = Date.now() - t0;
    return report;
  } finally {
    await worker.stop();
    await app.close();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '20000' },
      'arg-kb': { type: 'string', default: '10' },
      'maxmemory-mb': { type: 'string', default: '64' },
    },
  });
  const common = {
    tasks: Number(values.tasks),
    argBytes: Number(values['arg-kb']) * 1024,
    maxmemoryMb: Number(values['maxmemory-mb']),
  };
  console.log(
    `Incident replay: ${common.tasks} tasks with ${values['arg-kb']} KB arguments, maxmemory ${common.maxmemoryMb} MB, noeviction, one worker (concurrency 4, 2 ms per task)\n`,
  );
  console.log(
    '| claim check | offered | accepted | refused (E_MEMORY_FULL) | other errors | completed | left | Redis growth per task | peak of maxmemory | writes Redis refused (OOM) | time |',
  );
  console.log('| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |');
  for (const claimCheck of [true, false]) {
    const r = await replayIncident({ ...common, claimCheck });
    console.log(
      `| ${claimCheck ? 'on' : 'off'} | ${r.offered} | ${r.accepted} | ${r.refusedMemoryFull} | ${r.otherErrors.length} | ${r.completed} | ${r.leftInStream} | ${r.growthPerTask.toFixed(0)} B | ${(100 * r.peakFraction).toFixed(0)} % | ${r.redisRefusedWrites} | ${(r.elapsedMs / 1000).toFixed(1)} s |`,
    );
    for (const e of r.otherErrors.slice(0, 3)) console.log(`  error: ${e}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
