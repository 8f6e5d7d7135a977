import { performance } from 'node:perf_hooks';
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { Payload } from '../config.js';
import { deferred, type BenchWorker, type Producer, type System } from './system.js';

/** BullMQ with its defaults (completed jobs are kept, as out of the box). */
export const bullmqSystem: System = {
  name: 'bullmq',

  async producer(t, opts): Promise<Producer> {
    const connection = { host: t.host, port: t.port };
    const queue = new Queue<Payload>(t.queue, { connection });
    await queue.waitUntilReady();
    let events: QueueEvents | undefined;
    if (opts.waitResults) {
      events = new QueueEvents(t.queue, { connection });
      await events.waitUntilReady();
    }
    return {
      async enqueue(p) {
        await queue.add('noop', p);
      },
      async enqueueBulk(ps) {
        await queue.addBulk(ps.map((data) => ({ name: 'noop', data })));
      },
      async run(p, timeoutMs) {
        if (!events) throw new Error('producer made without waitResults');
        const job = await queue.add('noop', p);
        await job.waitUntilFinished(events, timeoutMs);
      },
      async close() {
        await events?.close();
        await queue.close();
      },
    };
  },

  async worker(spec): Promise<BenchWorker> {
    let settled = 0;
    let failed = 0;
    const finished = deferred<number>();
    const count = (): void => {
      if (++settled === spec.expect) finished.resolve(performance.now());
    };
    const worker = new Worker<Payload>(
      spec.queue,
      () => {
        spec.onTask();
        return Promise.resolve(null);
      },
      {
        connection: { host: spec.host, port: spec.port, maxRetriesPerRequest: null },
        concurrency: spec.concurrency,
      },
    );
    worker.on('completed', count);
    worker.on('failed', () => {
      failed++;
      count();
    });
    await worker.waitUntilReady();
    return {
      done: finished.promise,
      failures: () => failed,
      stop: () => worker.close(),
    };
  },
};
