/**
 * `npm run bench:cluster`: what Redis Cluster does to tasuki, measured on local clusters.
 *
 *   npm run bench:cluster -- [--masters 3,6] [--replicas 1] [--messages 2000] [--subscribers 10]
 *                            [--tasks 6000] [--out bench/results/cluster.json] [--smoke]
 *
 * 1. Bandwidth: N messages of 1 KB to S subscribers via classic PUBLISH (copied to every node over
 *    the cluster bus), SPUBLISH (shard channels, Redis 7) and a tasuki channel (a stream: one slot),
 *    at each master count; bytes written per node (see bench/cluster-bandwidth.ts).
 * 2. The task path: enqueue and drain throughput of tasks spread over six queues, on a 3-master
 *    cluster against one server, as a ratio.
 *
 * Loads tasuki from src/ (tsx). Run it on a quiet machine; every server is a child stopped by PID.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { tasuki, Worker } from '../src/index.js';
import { silentLogger } from '../src/log/logger.js';
import { TestCluster, TestRedis } from '../src/testing/index.js';
import { measure, MODES, type BandwidthRow } from './cluster-bandwidth.js';

const { values: argv } = parseArgs({
  options: {
    masters: { type: 'string', default: '3,6' },
    replicas: { type: 'string', default: '1' },
    messages: { type: 'string' },
    subscribers: { type: 'string', default: '10' },
    tasks: { type: 'string' },
    out: { type: 'string', default: 'bench/results/cluster.json' },
    smoke: { type: 'boolean', default: false },
  },
});
const mastersList = argv.masters.split(',').map(Number);
const replicas = Number(argv.replicas);
const messages = Number(argv.messages ?? (argv.smoke ? 200 : 2000));
const subscribers = Number(argv.subscribers);
const tasks = Number(argv.tasks ?? (argv.smoke ? 600 : 6000));
const QUEUES = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5'];

/** Enqueue and drain rates (tasks/s) of the task path on `url`. */
async function taskPath(url: string): Promise<{ enqueue: number; drain: number }> {
  const app = tasuki({ redis: url, queues: QUEUES, prefix: `b${Date.now()}`, logger: silentLogger() });
  let done = 0;
  const defs = QUEUES.map((queue) =>
    app.task({ name: `t-${queue}`, queue, schema: z.object({ i: z.number() }), handler: () => void done++ }),
  );
  const t0 = performance.now();
  for (let i = 0; i < tasks; i += 200) {
    await Promise.all(
      Array.from({ length: 200 }, (_, j) => defs[(i + j) % defs.length]!.enqueue({ i: i + j })),
    );
  }
  const enqueue = tasks / ((performance.now() - t0) / 1000);
  const worker = new Worker(app, { concurrency: 50, logger: silentLogger() });
  const t1 = performance.now();
  await worker.start();
  while (done < tasks) await new Promise((r) => setTimeout(r, 5));
  const drain = tasks / ((performance.now() - t1) / 1000);
  await worker.stop();
  await app.close();
  return { enqueue, drain };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const bandwidth: BandwidthRow[] = [];
for (const masters of mastersList) {
  process.stderr.write(`starting a cluster of ${masters} masters + ${masters * replicas} replicas...\n`);
  const tc = await TestCluster.start({ masters, replicas });
  try {
    for (const mode of MODES) {
      const row = await measure(tc, mode, masters, messages, subscribers);
      bandwidth.push(row);
      process.stderr.write(`  ${mode}: ${fmt(row.totalPerMessage)} B/message over all nodes\n`);
    }
  } finally {
    await tc.close();
  }
}

process.stderr.write('task path: one server...\n');
const single = await TestRedis.start();
const one = await taskPath(single.url).finally(() => single.close());
process.stderr.write('task path: a 3-master cluster...\n');
const tc = await TestCluster.start({ masters: 3, replicas });
const clustered = await taskPath(tc.url).finally(() => tc.close());

const lines = [
  `Bandwidth: ${messages} messages of 1 KB to ${subscribers} subscribers (bytes written per message published)`,
  '',
  '| mode | masters | nodes | all nodes | busiest node | cluster bus | bus publish messages |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...bandwidth.map(
    (r) =>
      `| ${r.mode} | ${r.masters} | ${r.nodes} | ${fmt(r.totalPerMessage)} | ${fmt(r.maxNodePerMessage)} | ` +
      `${fmt(r.busPerMessage)} | ${fmt(r.busPublishes)} |`,
  ),
  '',
  `Task path (${tasks} tasks over ${QUEUES.length} queues, one worker, concurrency 50), tasks/s:`,
  '',
  '| | one server | 3-master cluster | cluster / server |',
  '| --- | ---: | ---: | ---: |',
  `| enqueue | ${fmt(one.enqueue)} | ${fmt(clustered.enqueue)} | ${(clustered.enqueue / one.enqueue).toFixed(2)} |`,
  `| drain | ${fmt(one.drain)} | ${fmt(clustered.drain)} | ${(clustered.drain / one.drain).toFixed(2)} |`,
];
process.stdout.write(`${lines.join('\n')}\n`);
writeFileSync(
  argv.out,
  `${JSON.stringify({ messages, subscribers, replicas, bandwidth, taskPath: { one, clustered } }, null, 2)}\n`,
);
process.stderr.write(`wrote ${argv.out}\n`);
