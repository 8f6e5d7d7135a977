/**
 * `npm run bench:scale` (issue 18, point 4): how tasuki's throughput and cost per task change with
 * the number of worker processes, the number of queues and the size of the backlog, on one
 * redis-server and on a local 3-master Redis Cluster.
 *
 *   npm run bench:scale -- [--tasks 200000] [--backlogs 10000,100000,1000000] [--workers 1,2,4]
 *                          [--queues 1,10,100] [--concurrency 50] [--topology standalone,cluster]
 *                          [--out bench/results/scale.json] [--smoke]
 *
 * Each point: enqueue the tasks in bulk calls of 1,000 spread over the queues (timed: enqueue rate),
 * read Redis's used_memory (memory per waiting task), then start the worker processes (already
 * connected; the clock starts at `go`) and time the drain until they have recorded every outcome.
 * The workers are `Worker`s of the built package in child processes (bench/scale/worker.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createLogger, tasuki } from 'tasuki';
import { TestCluster, TestRedis } from 'tasuki/testing';

const { values: argv } = parseArgs({
  options: {
    tasks: { type: 'string' },
    backlogs: { type: 'string' },
    workers: { type: 'string', default: '1,2,4' },
    queues: { type: 'string', default: '1,10,100' },
    concurrency: { type: 'string', default: '50' },
    topology: { type: 'string', default: 'standalone,cluster' },
    out: { type: 'string', default: 'bench/results/scale.json' },
    smoke: { type: 'boolean', default: false },
  },
});
const list = (text: string): number[] => text.split(',').map(Number);
const TASKS = Number(argv.tasks ?? (argv.smoke ? 2_000 : 200_000));
const BACKLOGS = list(argv.backlogs ?? (argv.smoke ? '1000,5000' : '10000,100000,1000000'));
const WORKERS = list(argv.workers);
const QUEUES = list(argv.queues);
const CONCURRENCY = Number(argv.concurrency);
const BULK = 1_000;
const WORKER = fileURLToPath(new URL('./scale/worker.ts', import.meta.url));

/** One measured point. */
interface Point {
  /** Which curve the point is on. */
  series: 'workers' | 'queues' | 'backlog';
  topology: string;
  workers: number;
  queues: number;
  tasks: number;
  enqueuePerSec: number;
  drainPerSec: number;
  /** Redis used_memory growth per waiting task, bytes. */
  bytesPerTask: number;
  /** Worker CPU per task (all processes), µs. */
  workerCpuUsPerTask: number;
}

const queueNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `s${i}`);

interface Child {
  process: ChildProcess;
  done: number;
  cpuUs: number;
}

function startWorker(url: string, prefix: string, queues: string[]): Promise<Child> {
  const child: Child = {
    process: fork(WORKER, [JSON.stringify({ url, prefix, queues, concurrency: CONCURRENCY })], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
    done: 0,
    cpuUs: 0,
  };
  return new Promise((resolve, reject) => {
    child.process.on('message', (m: { type: string; done?: number; cpuUs?: number }) => {
      if (m.type === 'ready') resolve(child);
      if (m.type === 'count') {
        child.done = m.done ?? 0;
        child.cpuUs = m.cpuUs ?? 0;
      }
    });
    child.process.once('exit', (code) =>
      reject(new Error(`scale worker exited (${code}) before it was ready`)),
    );
  });
}

async function usedMemory(redis: Awaited<ReturnType<ReturnType<typeof tasuki>['redis']>>): Promise<number> {
  // On a cluster, the sum over the masters.
  const nodes = 'nodes' in redis ? redis.nodes('master') : [redis];
  let total = 0;
  for (const node of nodes) total += Number(/used_memory:(\d+)/.exec(await node.info('memory'))?.[1] ?? 0);
  return total;
}

async function point(
  series: Point['series'],
  topology: string,
  url: string,
  workers: number,
  queues: number,
  tasks: number,
): Promise<Point> {
  const prefix = `scale${Date.now().toString(36)}`;
  const names = queueNames(queues);
  const app = tasuki({ redis: url, prefix, queues: names, logger: createLogger({ level: 'silent' }) });
  const defs = names.map((queue) =>
    app.task({ name: `noop-${queue}`, queue, schema: z.object({ i: z.number() }), handler: () => null }),
  );
  const redis = await app.redis();
  const children = await Promise.all(Array.from({ length: workers }, () => startWorker(url, prefix, names)));
  const memory0 = await usedMemory(redis);
  const t0 = performance.now();
  for (let from = 0; from < tasks; from += BULK * defs.length) {
    await Promise.all(
      defs.map((def, q) => {
        const start = from + q * BULK;
        const n = Math.max(0, Math.min(BULK, tasks - start));
        return n
          ? def.enqueueMany(Array.from({ length: n }, (_, j) => ({ args: { i: start + j } })))
          : Promise.resolve([]);
      }),
    );
  }
  const enqueueMs = performance.now() - t0;
  const bytes = (await usedMemory(redis)) - memory0;
  const t1 = performance.now();
  for (const c of children) c.process.send({ type: 'go' });
  while (children.reduce((sum, c) => sum + c.done, 0) < tasks) await new Promise((r) => setTimeout(r, 10));
  const drainMs = performance.now() - t1;
  const cpuUs = children.reduce((sum, c) => sum + c.cpuUs, 0);
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.process.once('exit', () => resolve());
          c.process.send({ type: 'stop' });
        }),
    ),
  );
  await app.close();
  const p: Point = {
    series,
    topology,
    workers,
    queues,
    tasks,
    enqueuePerSec: tasks / (enqueueMs / 1000),
    drainPerSec: tasks / (drainMs / 1000),
    bytesPerTask: bytes / tasks,
    workerCpuUsPerTask: cpuUs / tasks,
  };
  process.stderr.write(
    `  ${topology} workers=${workers} queues=${queues} tasks=${tasks}: enqueue ${fmt(p.enqueuePerSec)}/s, ` +
      `drain ${fmt(p.drainPerSec)}/s, ${p.bytesPerTask.toFixed(0)} B/task, worker CPU ${p.workerCpuUsPerTask.toFixed(1)} µs/task\n`,
  );
  return p;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const points: Point[] = [];

for (const topology of argv.topology.split(',')) {
  process.stderr.write(`${topology}...\n`);
  const server = topology === 'cluster' ? await TestCluster.start({ masters: 3 }) : await TestRedis.start();
  try {
    for (const w of WORKERS) points.push(await point('workers', topology, server.url, w, 1, TASKS));
    for (const q of QUEUES) points.push(await point('queues', topology, server.url, 2, q, TASKS));
    for (const b of BACKLOGS) points.push(await point('backlog', topology, server.url, 2, 1, b));
  } finally {
    await server.close();
  }
}

const table = (title: string, key: 'workers' | 'queues' | 'tasks', rows: Point[]): string[] => [
  `${title}`,
  '',
  `| topology | ${key} | enqueue tasks/s | drain tasks/s | Redis B/task | worker CPU µs/task |`,
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (p) =>
      `| ${p.topology} | ${fmt(p[key])} | ${fmt(p.enqueuePerSec)} | ${fmt(p.drainPerSec)} | ${p.bytesPerTask.toFixed(0)} | ${p.workerCpuUsPerTask.toFixed(1)} |`,
  ),
  '',
];
const of = (series: Point['series']): Point[] => points.filter((p) => p.series === series);
const lines = [
  ...table(
    `Worker processes (1 queue, ${fmt(TASKS)} tasks, concurrency ${CONCURRENCY} each):`,
    'workers',
    of('workers'),
  ),
  ...table(`Queues (2 worker processes, ${fmt(TASKS)} tasks spread evenly):`, 'queues', of('queues')),
  ...table('Backlog (2 worker processes, 1 queue): all enqueued, then drained:', 'tasks', of('backlog')),
];
process.stdout.write(`${lines.join('\n')}\n`);
writeFileSync(argv.out, `${JSON.stringify({ concurrency: CONCURRENCY, points }, null, 2)}\n`);
process.stderr.write(`wrote ${argv.out}\n`);
