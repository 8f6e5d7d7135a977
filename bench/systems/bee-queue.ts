import { performance } from 'node:perf_hooks';
import BeeQueue from 'bee-queue';
import type { Payload } from '../config.js';
import { deferred, type BenchWorker, type Producer, type System } from './system.js';

/** bee-queue with its defaults (jobs stored and kept, events sent), producers as non-workers. */
export const beeQueueSystem: System = {
  name: 'bee-queue',

  async producer(t, opts): Promise<Producer> {
    const queue = new BeeQueue<Payload>(t.queue, {
      redis: { host: t.host, port: t.port },
      isWorker: false,
      getEvents: opts.waitResults,
    });
    // Completions are matched by id from the queue-wide events: a job's own 'succeeded' event is lost
    // when the worker finishes it before save() has resolved (bee-queue registers the job only then).
    const waiting = new Map<string, (err?: Error) => void>();
    const early = new Map<string, Error | undefined>();
    const settle = (id: string, err?: Error): void => {
      const w = waiting.get(id);
      if (w) {
        waiting.delete(id);
        w(err);
      } else early.set(id, err);
    };
    if (opts.waitResults) {
      queue.on('job succeeded', (id: string) => settle(id));
      queue.on('job failed', (id: string, err: Error) => settle(id, err));
    }
    await queue.ready();
    return {
      async enqueue(p) {
        await queue.createJob(p).save();
      },
      async enqueueBulk(ps) {
        const errors = await queue.saveAll(ps.map((p) => queue.createJob(p)));
        if (errors.size) throw [...errors.values()][0] as Error;
      },
      run(p, timeoutMs) {
        return new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`job not done in ${timeoutMs} ms`)), timeoutMs);
          queue
            .createJob(p)
            .save()
            .then((job) => {
              const settle = (err?: Error): void => {
                clearTimeout(timer);
                if (err) reject(err);
                else resolve();
              };
              if (early.has(job.id)) {
                const err = early.get(job.id);
                early.delete(job.id);
                settle(err);
              } else waiting.set(job.id, settle);
            }, reject);
        });
      },
      async close() {
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
    const queue = new BeeQueue<Payload>(spec.queue, { redis: { host: spec.host, port: spec.port } });
    queue.on('succeeded', count);
    queue.on('failed', () => {
      failed++;
      count();
    });
    queue.process(spec.concurrency, () => {
      spec.onTask();
      return Promise.resolve(null);
    });
    await queue.ready();
    return {
      done: finished.promise,
      failures: () => failed,
      async stop() {
        await queue.close();
      },
    };
  },
};
