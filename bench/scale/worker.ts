/**
 * A worker process of the scale bench (bench/scale.ts): serves the given queues of the bench's app
 * at the given concurrency once the parent says `go`, and reports how many tasks it has finished
 * (outcomes recorded in Redis) every 25 ms until told to stop.
 */
import { z } from 'zod';
import { createLogger, tasuki, Worker } from 'tasuki';

interface Config {
  url: string;
  prefix: string;
  queues: string[];
  concurrency: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const app = tasuki({
  redis: config.url,
  prefix: config.prefix,
  queues: config.queues,
  logger: createLogger({ level: 'silent' }),
});
for (const queue of config.queues) {
  app.task({ name: `noop-${queue}`, queue, schema: z.object({ i: z.number() }), handler: () => null });
}
const worker = new Worker(app, { concurrency: config.concurrency });
await app.redis();

let reporter: NodeJS.Timeout | undefined;
const send = (msg: object): void => void process.send?.(msg);
process.on('message', (m: { type: string }) => {
  if (m.type === 'go') {
    const cpu0 = process.cpuUsage();
    void worker.start().then(() => {
      reporter = setInterval(() => {
        const cpu = process.cpuUsage(cpu0);
        send({ type: 'count', done: worker.counts.succeeded, cpuUs: cpu.user + cpu.system });
      }, 25);
    });
  } else if (m.type === 'stop') {
    clearInterval(reporter);
    void worker
      .stop()
      .then(() => app.close())
      .then(() => process.disconnect());
  }
});
send({ type: 'ready' });
