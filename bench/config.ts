/** What the bench measures, and how much of it: the full run (issue 3) and the smoke run (CI). */

export const SYSTEMS = ['tasuki', 'tasuki-full', 'tasuki-rabbitmq', 'bullmq', 'bee-queue'] as const;
/**
 * tasuki's rows: bare, with the features a production user turns on (issue 18, point 1), and on
 * RabbitMQ (issue 17).
 */
export const TASUKI_SYSTEMS: readonly SystemName[] = ['tasuki', 'tasuki-full', 'tasuki-rabbitmq'];
export type SystemName = (typeof SYSTEMS)[number];

/** The system runs tasuki with its tasks on RabbitMQ (results still on the bench's Redis). */
export const ON_RABBITMQ: SystemName = 'tasuki-rabbitmq';

/** Scenario names, exactly as issue 3 spells them (they are the `scenario` of each row). */
export const SCENARIOS = [
  'enqueue-single',
  'enqueue-bulk',
  'drain-c1',
  'drain-c50',
  'latency-p50',
  'latency-p99',
  'redis-bytes-per-task-10B',
  'redis-bytes-per-task-10KB',
  'redis-bytes-per-task-1MB',
  'enqueue-bulk-10KB',
  'drain-c50-10KB',
  'redis-commands-per-task',
  'redis-cpu-us-per-task',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * What tasuki on RabbitMQ is measured on (the Redis bytes, commands and claim-check scenarios are
 * about the Redis broker); each row is compared with tasuki on Redis.
 */
export const RABBITMQ_SCENARIOS: ReadonlySet<string> = new Set<ScenarioName>([
  'enqueue-single',
  'enqueue-bulk',
  'drain-c1',
  'drain-c50',
  'latency-p50',
  'latency-p99',
]);

/** One row of `bench/results/latest.json`. */
export interface Row {
  scenario: string;
  system: SystemName;
  median: number;
  min: number;
  max: number;
  unit: string;
}

/** Counts for one run. */
export interface Sizes {
  enqueueTasks: number;
  enqueueInFlight: number;
  bulkSize: number;
  drainTasks: number;
  /** Tasks at the start of each drain that are run but not timed (JIT warm-up), at most a tenth. */
  drainWarmup: number;
  latencyTasks: number;
  latencyWarmup: number;
  latencyRatePerSec: number;
  bytesTasks10B: number;
  bytesTasks10KB: number;
  bytesTasks1MB: number;
  /** Tasks of `enqueue-bulk-10KB` and `drain-c50-10KB`. */
  tasks10KB: number;
  commandTasks: number;
  /** `-n` of each redis-benchmark run (XADD; XREADGROUP and EVALSHA use a fraction). */
  ceilingRequests: number;
}

export const FULL: Sizes = {
  enqueueTasks: 20_000,
  enqueueInFlight: 100,
  bulkSize: 1_000,
  drainTasks: 20_000,
  drainWarmup: 2_000,
  latencyTasks: 2_000,
  latencyWarmup: 100,
  latencyRatePerSec: 500,
  bytesTasks10B: 10_000,
  bytesTasks10KB: 10_000,
  bytesTasks1MB: 200,
  tasks10KB: 5_000,
  commandTasks: 10_000,
  ceilingRequests: 100_000,
};

/** Tiny counts: checks that every scenario still runs, not how fast. */
export const SMOKE: Sizes = {
  enqueueTasks: 300,
  enqueueInFlight: 20,
  bulkSize: 100,
  drainTasks: 300,
  drainWarmup: 30,
  latencyTasks: 60,
  latencyWarmup: 10,
  latencyRatePerSec: 500,
  bytesTasks10B: 200,
  bytesTasks10KB: 50,
  bytesTasks1MB: 4,
  tasks10KB: 100,
  commandTasks: 200,
  ceilingRequests: 2_000,
};

/** Tasks per XREADGROUP and per `finish` call in the ceiling mix (what a c=50 worker reaches). */
export const CEILING_BATCH = 50;
/** Pipeline depth of the pipelined ceiling runs. */
export const CEILING_PIPELINE = 16;

/** A task's arguments: `{ i }`, padded to about `bytes` of JSON when asked. */
export interface Payload {
  i: number;
  pad?: string;
}

export function payload(i: number, bytes = 0): Payload {
  if (bytes <= 0) return { i };
  const head = JSON.stringify({ i, pad: '' }).length;
  return { i, pad: 'x'.repeat(Math.max(0, bytes - head)) };
}
