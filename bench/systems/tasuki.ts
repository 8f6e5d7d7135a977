import { performance } from 'node:perf_hooks';
import { z } from 'zod';
// The built package (dist/, through the package's own name), as users load it: `npm run bench` builds first.
import { createLogger, tasuki, Worker, type Tasuki } from 'tasuki';
import { TasukiMetrics } from 'tasuki/metrics';
import type { Payload, SystemName } from '../config.js';
import { deferred, sleep, type BenchWorker, type Producer, type System, type Target } from './system.js';

const schema = z.object({ i: z.number(), pad: z.string().optional() });

/** The RabbitMQ node of `tasuki-rabbitmq` (bench/run.ts starts one and sets it for the worker children too). */
export const RABBITMQ_URL_ENV = 'TASUKI_BENCH_RABBITMQ_URL';

/**
 * tasuki's configurations. `tasuki`: bare (issue 18, point 1) — results stored, the claim check for
 * arguments over 1 KiB (the 10 KB and 1 MB scenarios need somewhere to put them), nothing else.
 * `tasuki-full`: what a production user turns on — the same, plus the memory guard (the bench's
 * Redis has a maxmemory, so it samples and admits every enqueue), Prometheus metrics fed by the
 * worker's task events, and an app subscription to every task's events in the producer.
 * `tasuki-rabbitmq`: bare, with its tasks on RabbitMQ (issue 17).
 */
type Configuration = Extract<SystemName, 'tasuki' | 'tasuki-full' | 'tasuki-rabbitmq'>;

function app(t: Target, configuration: Configuration): Tasuki {
  const onRabbit = configuration === 'tasuki-rabbitmq';
  const broker = onRabbit ? process.env[RABBITMQ_URL_ENV] : undefined;
  if (onRabbit && !broker) throw new Error(`tasuki-rabbitmq: ${RABBITMQ_URL_ENV} is not set`);
  return tasuki({
    memoryGuard: configuration === 'tasuki-full' ? {} : false,
    redis: `redis://${t.host}:${t.port}`,
    ...(broker ? { broker } : {}),
    queues: [t.queue],
    logger: createLogger({ level: 'silent' }),
    maxPayloadBytes: t.maxPayloadBytes,
    // The claim check as a production user runs it: arguments over the default threshold (1 KiB)
    // go to a filesystem payload store; the small ones of most scenarios never touch it.
    payloads: { store: t.payloadDir },
  });
}

/** tasuki in one of its configurations. */
function tasukiAs(configuration: Configuration): System {
  const onRabbit = configuration === 'tasuki-rabbitmq';
  const full = configuration === 'tasuki-full';
  return {
    name: configuration,

    async producer(t): Promise<Producer> {
      const a = app(t, configuration);
      const task = a.task({ name: 'noop', queue: t.queue, schema, handler: () => null });
      // Connected (and on RabbitMQ its queues declared) before the clock starts.
      await a.redis();
      if (onRabbit) await task.enqueue({ i: -1 });
      // Full: someone follows every task's events (as a dashboard or an app listener would).
      const subscription = full ? a.subscribe([t.queue]) : undefined;
      let seen = 0;
      subscription?.on('succeeded', () => void seen++);
      await subscription?.ready;
      return {
        async enqueue(p: Payload) {
          await task.enqueue(p);
        },
        async enqueueBulk(ps) {
          await task.enqueueMany(ps.map((args) => ({ args })));
        },
        async run(p, timeoutMs) {
          const handle = await task.enqueue(p);
          await handle.result({ timeout: timeoutMs });
        },
        async close() {
          await subscription?.close();
          await a.close();
        },
      };
    },

    async worker(spec): Promise<BenchWorker> {
      const a = app(spec, configuration);
      let calls = 0;
      const finished = deferred<number>();
      const w = new Worker(a, { concurrency: spec.concurrency });
      const settled = (): number => w.counts.succeeded + w.counts.failed;
      // tasuki has no per-task completion event: once the last handler has run, wait until the worker
      // counted every task and holds none (every outcome recorded: the last finish script replied).
      // The worker's stop is not timed, as the peers' close is not.
      const watch = async (): Promise<void> => {
        while (settled() < spec.expect || w.holding > 0) await sleep(1);
        finished.resolve(performance.now());
      };
      a.task({
        name: 'noop',
        queue: spec.queue,
        schema,
        handler: () => {
          spec.onTask();
          if (++calls === spec.expect) void watch();
          return null;
        },
      });
      // Full: the worker's events feed Prometheus metrics, as `tasuki worker --metrics-port` does.
      const metrics = full ? new TasukiMetrics(a) : undefined;
      metrics?.observe(w);
      await w.start();
      return {
        done: finished.promise,
        failures: () => w.counts.failed,
        async stop() {
          await w.stop();
          metrics?.close();
          await a.close();
        },
      };
    },
  };
}

export const tasukiSystem = tasukiAs('tasuki');
export const tasukiFullSystem = tasukiAs('tasuki-full');
export const tasukiRabbitMqSystem = tasukiAs('tasuki-rabbitmq');
