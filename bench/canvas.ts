/**
 * Canvas benchmark: what a chord costs per member against the same tasks enqueued on their own, and
 * what one continuation adds to a chain step. One worker in this process, a throw-away redis-server.
 *
 *   node --import tsx bench/canvas.ts [--members 1000] [--rounds 5] [--concurrency 50] [--steps 50]
 *
 * Figures (medians over the rounds):
 * - plain: `--members` trivial tasks enqueued at once (enqueueMany), until the last result, tasks/s;
 * - chord: a chord of `--members` of the same tasks and a callback, enqueue to its result, members/s
 *   (each member also runs a continuation: a join in the canvas's home slot);
 * - chain step: a chain of `--steps` members, enqueue to result, ms per step (a step is a member and
 *   its continuation, one after the other: latency, not throughput).
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { EmbeddedRedis } from '../src/connection/embedded.js';
import { chain, chord, tasuki, Worker } from '../src/index.js';
import { silentLogger } from '../src/log/logger.js';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '50' },
    steps: { type: 'string', default: '50' },
  },
});
const MEMBERS = Number(values.members);
const ROUNDS = Number(values.rounds);
const STEPS = Number(values.steps);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const redis = await EmbeddedRedis.start();
const plain: number[] = [];
const chords: number[] = [];
const steps: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const app = tasuki({ redis: redis.url, prefix: `bc${round}`, logger: silentLogger() });
  const one = app.task({ name: 'one', schema: z.number(), handler: (n) => n });
  const sum = app.task({ name: 'sum', schema: z.array(z.number()), handler: (ns) => ns.length });
  const worker = new Worker(app, { logger: silentLogger(), concurrency: Number(values.concurrency) });
  await worker.start();
  let t = performance.now();
  const handles = await one.enqueueMany(Array.from({ length: MEMBERS }, (_, i) => ({ args: i })));
  await Promise.all(handles.map((h) => h.result({ timeout: '5m' })));
  plain.push(MEMBERS / ((performance.now() - t) / 1000));
  t = performance.now();
  const handle = await chord(
    Array.from({ length: MEMBERS }, (_, i) => one.s(i)),
    sum.s(),
  ).enqueue();
  await handle.result({ timeout: '5m' });
  chords.push(MEMBERS / ((performance.now() - t) / 1000));
  t = performance.now();
  const long = await chain([one.s(0), ...Array.from({ length: STEPS - 1 }, () => one.s())]).enqueue();
  await long.result({ timeout: '5m' });
  steps.push((performance.now() - t) / STEPS);
  await worker.stop();
  await app.close();
}
console.log(
  JSON.stringify({
    members: MEMBERS,
    rounds: ROUNDS,
    plainTasksPerSecond: Math.round(median(plain)),
    chordMembersPerSecond: Math.round(median(chords)),
    chainStepMs: Number(median(steps).toFixed(2)),
  }),
);
await redis.stop();
