import type { Command } from 'commander';
import { OptionsError } from '../errors.js';
import type { Duration } from '../util/duration.js';
import { Worker } from '../worker/worker.js';
import { loadApp } from './load-app.js';

export function parseQueues(value: string | undefined): string[] | undefined {
  return value
    ?.split(',')
    .map((q) => q.trim())
    .filter(Boolean);
}

export function parsePositiveInt(name: string, value: string, min = 1): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) {
    const what = min === 0 ? 'a non-negative integer' : 'a positive integer';
    throw new OptionsError('command line', [{ path: name, message: `"${value}" is not ${what}` }]);
  }
  return n;
}

/**
 * Stops gracefully on the first SIGTERM/SIGINT and resolves when stopped; a second signal exits at
 * once (code 130), leaving the tasks it held to be recovered as after a crash.
 */
export function stopOnSignals(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let signalled = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (signalled) {
        console.error(`tasuki: second ${signal}; exiting now`);
        process.exit(130);
      }
      signalled = true;
      void stop().then(resolve, resolve);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run tasks from the given queues until SIGTERM/SIGINT')
    .requiredOption('--app <module>', 'module that exports the tasuki app (.js or .ts)')
    .option('--queues <names>', 'comma-separated queues to serve (default: all of the app)')
    .option('--concurrency <n>', 'tasks run at once', '10')
    .option('--prefetch <n>', 'tasks fetched ahead of free slots (default max(concurrency, 16))')
    .option('--grace <duration>', 'on SIGTERM, time running tasks get to finish', '25s')
    .option(
      '--claim-idle <duration>',
      "take over a dead worker's tasks after this long without heartbeat",
      '30s',
    )
    .action(
      async (opts: {
        app: string;
        queues?: string;
        concurrency: string;
        prefetch?: string;
        grace: string;
        claimIdle: string;
      }) => {
        const { app } = await loadApp(opts.app);
        const queues = parseQueues(opts.queues);
        const worker = new Worker(app, {
          ...(queues ? { queues } : {}),
          concurrency: parsePositiveInt('--concurrency', opts.concurrency),
          ...(opts.prefetch !== undefined
            ? { prefetch: parsePositiveInt('--prefetch', opts.prefetch, 0) }
            : {}),
          grace: opts.grace as Duration,
          claimIdle: opts.claimIdle as Duration,
        });
        await worker.start();
        await stopOnSignals(() => worker.stop());
        await app.close();
      },
    );
}
