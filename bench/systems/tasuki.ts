import { performance } from 'node:perf_hooks';
import { z } from 'zod';
// The built package (dist/, through the package's own name), as users load it: `npm run bench` builds first.
import { createLogger, tasuki, Worker, type Tasuki } from 'tasuki';
import type { Payload } from '../config.js';
import { deferred, sleep, type BenchWorker, type Producer, type System, type Target } from './system.js';

const schema = z.object({ i: z.number(), pad: z.string().optional() });

function app(t: Target): Tasuki {
  return tasuki({
    redis: `redis://${t.host}:${t.port}`,
    queues: [t.queue],
    logger: createLogger({ level: 'silent' }),
    maxPayloadBytes: t.maxPayloadBytes,
    // The claim check as a production user runs it: arguments over the default threshold (1 KiB)
    // go to a filesystem payload store; the small ones of most scenarios never touch it.
    payloads: { store: t.payloadDir },
  });
}

export const tasukiSystem: System = {
  name: 'tasuki',

  async producer(t): Promise<Producer> {
    const a = app(t);
    const task = a.task({ name: 'noop', queue: t.queue, schema, handler: () => null });
    await a.redis();
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
    const a = app(spec);
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
