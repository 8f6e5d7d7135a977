import type { Command } from 'commander';
import { OptionsError } from '../errors.js';
import { Worker } from '../worker/worker.js';
import { loadApp } from './load-app.js';

export function parseQueues(value: string | undefined): string[] | undefined {
  return value
    ?.split(',')
    .map((q) => q.trim())
    .filter(Boolean);
}

export function parsePositiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new OptionsError('command line', [{ path: name, message: `"${value}" is not a positive integer` }]);
  }
  return n;
}

/** Stops the worker on SIGTERM/SIGINT; resolves when it has stopped. */
export function stopOnSignals(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const handler = (): void => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
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
    .action(async (opts: { app: string; queues?: string; concurrency: string }) => {
      const { app } = await loadApp(opts.app);
      const queues = parseQueues(opts.queues);
      const worker = new Worker(app, {
        ...(queues ? { queues } : {}),
        concurrency: parsePositiveInt('--concurrency', opts.concurrency),
      });
      await worker.start();
      await stopOnSignals(() => worker.stop());
      await app.close();
    });
}
