import { performance } from 'node:perf_hooks';
import { z } from 'zod';
// The built package (dist/, through the package's own name), as users load it: `npm run bench` builds first.
import { createLogger, tasuki, Worker, type Tasuki } from 'tasuki';
import type { Payload } from '../config.js';
import { deferred, sleep, type BenchWorker, type Producer, type System, type Target } from './system.js';

const schema = z.object({ i: z.number(), pad: z.string().optional() });

/** The RabbitMQ node of `tasuki-rabbitmq` (bench/run.ts starts one and sets it for the worker children too). */
export const RABBITMQ_URL_ENV = 'TASUKI_BENCH_RABBITMQ_URL';

function app(t: Target, onRabbit: boolean): Tasuki {
  const broker = onRabbit ? process.env[RABBITMQ_URL_ENV] : undefined;
  if (onRabbit && !broker) throw new Error(`tasuki-rabbitmq: ${RABBITMQ_URL_ENV} is not set`);
  return tasuki({
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

/** tasuki on Redis Streams (`tasuki`) or with its tasks on RabbitMQ (`tasuki-rabbitmq`). */
function tasukiOn(name: 'tasuki' | 'tasuki-rabbitmq'): System {
  const onRabbit = name === 'tasuki-rabbitmq';
  return {
    name,

    async producer(t): Promise<Producer> {
      const a = app(t, onRabbit);
      const task = a.task({ name: 'noop', queue: t.queue, schema, handler: () => null });
      // Connected (and on RabbitMQ its queues declared) before the clock starts.
      await a.redis();
      if (onRabbit) await task.enqueue({ i: -1 });
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
        close: () => a.close(),
      };
    },

    async worker(spec): Promise<BenchWorker> {
      const a = app(spec, onRabbit);
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
      await w.start();
      return {
        done: finished.promise,
        failures: () => w.counts.failed,
        async stop() {
          await w.stop();
          await a.close();
        },
      };
    },
  };
}

export const tasukiSystem = tasukiOn('tasuki');
export const tasukiRabbitMqSystem = tasukiOn('tasuki-rabbitmq');
