/**
 * Prometheus metrics of an app (prom-client): counters and a duration histogram fed by task events
 * (a worker's, or an app subscription's), gauges of queue depth, lag and Redis memory read when
 * Prometheus scrapes, lock acquisitions and losses, beat ticks. Labels are bounded: a queue the app
 * declares, a task it defines (else `other`), an outcome or reason from a fixed list — never a task
 * id or an argument. See docs/metrics.md.
 */
import type { RedisConnection } from '../connection/redis.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TaskEvent, TaskEvents } from '../events/event-map.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { parseMemoryInfo } from '../limits/memory-guard.js';
import { lockEvents } from '../lock/lock-events.js';
import { queueLag } from '../results/lag.js';
import type { QueueStats } from '../results/stats.js';

/** What the metrics read of the app (a `Tasuki` app is one). */
export interface MetricsApp {
  readonly queues: readonly string[];
  readonly keys: TasukiKeys;
  getTaskDefinition(name: string): unknown;
  queueStats(queue: string): Promise<QueueStats>;
  redis(): Promise<RedisConnection>;
}

export interface MetricsOptions {
  /** Registry to register in (default: a new one, so two apps in a process do not clash). */
  registry?: Registry;
  /** Also export prom-client's process metrics (CPU, memory, event loop lag); default true. */
  processMetrics?: boolean;
}

/** Histogram buckets of task run time, seconds: 5 ms to 10 min. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** An app's metrics in one prom-client registry. */
export class TasukiMetrics {
  readonly registry: Registry;
  private readonly tasks: Counter<'queue' | 'task' | 'outcome'>;
  private readonly duration: Histogram<'queue' | 'task' | 'outcome'>;
  private readonly retries: Counter<'queue' | 'task'>;
  private readonly deadLetters: Counter<'queue' | 'task' | 'reason'>;
  private readonly lockAcquired: Counter;
  private readonly lockLost: Counter;
  private readonly ticks: Counter<'schedule' | 'outcome'>;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly app: MetricsApp,
    options: MetricsOptions = {},
  ) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.tasks = new Counter({
      name: 'tasuki_tasks_total',
      help: 'Finished attempts, by queue, task and outcome (succeeded, retried, dead, expired, cancelled, revoked, released, limited).',
      labelNames: ['queue', 'task', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'tasuki_task_duration_seconds',
      help: 'Run time of attempts (handler start to finish), by queue, task and outcome.',
      labelNames: ['queue', 'task', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.retries = new Counter({
      name: 'tasuki_task_retries_total',
      help: 'Failed attempts that will run again, by queue and task.',
      labelNames: ['queue', 'task'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'tasuki_dead_letters_total',
      help: 'Tasks moved to the dead letters, by queue, task and reason.',
      labelNames: ['queue', 'task', 'reason'],
      registers,
    });
    this.lockAcquired = new Counter({
      name: 'tasuki_lock_acquisitions_total',
      help: 'Locks acquired by this process.',
      registers,
    });
    this.lockLost = new Counter({
      name: 'tasuki_lock_losses_total',
      help: 'Lock acquisitions of this process that ended before their release (expired or taken over).',
      registers,
    });
    this.ticks = new Counter({
      name: 'tasuki_beat_ticks_total',
      help: 'Ticks of periodic schedules claimed by beat, by schedule and outcome (enqueued, skipped).',
      labelNames: ['schedule', 'outcome'],
      registers,
    });
    this.queueGauges(registers);
    const onAcquired = (): void => this.lockAcquired.inc();
    const onLost = (): void => this.lockLost.inc();
    lockEvents.on('acquired', onAcquired).on('lost', onLost);
    this.unsubscribe.push(() => lockEvents.off('acquired', onAcquired).off('lost', onLost));
  }

  private queueGauges(registers: Registry[]): void {
    const tasks = new Gauge({
      name: 'tasuki_queue_tasks',
      help: 'Tasks a queue holds now, by state (waiting, active, delayed, dead); read at each scrape.',
      labelNames: ['queue', 'state'],
      registers,
      collect: async () => {
        tasks.reset();
        for (const queue of this.app.queues) {
          const s = await this.app.queueStats(queue).catch(() => undefined);
          if (!s) continue; // Redis away: no value rather than a wrong one
          tasks.set({ queue, state: 'waiting' }, s.waiting);
          tasks.set({ queue, state: 'active' }, s.active);
          tasks.set({ queue, state: 'delayed' }, s.delayed);
          tasks.set({ queue, state: 'dead' }, s.dead);
        }
      },
    });
    const lag = new Gauge({
      name: 'tasuki_queue_lag_seconds',
      help: 'How long the oldest task no worker has taken yet has waited (0: none waits); read at each scrape.',
      labelNames: ['queue'],
      registers,
      collect: async () => {
        lag.reset();
        const redis = await this.app.redis().catch(() => undefined);
        if (!redis) return;
        for (const queue of this.app.queues) {
          const ms = await queueLag(redis, this.app.keys, queue).catch(() => undefined);
          if (ms !== undefined) lag.set({ queue }, ms / 1000);
        }
      },
    });
    const memory = new Gauge({
      name: 'tasuki_redis_memory_bytes',
      help: "Redis's memory: used (used_memory) and max (maxmemory, 0 for no limit); read at each scrape.",
      labelNames: ['kind'],
      registers,
      collect: async () => {
        memory.reset();
        const info = await this.app
          .redis()
          .then((r) => r.info('memory'))
          .catch(() => undefined);
        if (info === undefined) return;
        const m = parseMemoryInfo(info);
        memory.set({ kind: 'used' }, m.used);
        memory.set({ kind: 'max' }, m.max);
      },
    });
  }

  /**
   * Counts the task events of `source` (a worker, or an app subscription — one of them per app, or
   * tasks are counted twice). Returns a function that stops counting.
   */
  observe(source: TaskEvents): () => void {
    const listener = (e: TaskEvent): void => this.count(e);
    source.on('task', listener);
    const stop = (): void => void source.off('task', listener);
    this.unsubscribe.push(stop);
    return stop;
  }

  /** Counts one tick of a periodic schedule (beat's `onTick`): `enqueued`, or `skipped` by its misfire policy. */
  beatTick(schedule: string, outcome: 'enqueued' | 'skipped' = 'enqueued'): void {
    this.ticks.inc({ schedule, outcome });
  }

  private count(e: TaskEvent): void {
    const queue = this.app.queues.includes(e.queue) ? e.queue : 'other';
    const task = this.app.getTaskDefinition(e.task) ? e.task : 'other';
    const labels = { queue, task, outcome: e.type };
    this.tasks.inc(labels);
    if (e.type === 'succeeded' || e.type === 'retried' || e.type === 'dead') {
      this.duration.observe(labels, Math.max(0, e.finishedAt - e.startedAt) / 1000);
    }
    if (e.type === 'retried') this.retries.inc({ queue, task });
    if (e.type === 'dead') this.deadLetters.inc({ queue, task, reason: e.reason });
  }

  /** The metrics in Prometheus's text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops counting events (the registry keeps its values). */
  close(): void {
    for (const stop of this.unsubscribe.splice(0)) stop();
  }
}
