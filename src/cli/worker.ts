import type { Command } from 'commander';
import { z } from 'zod';
import { OptionsError, Worker } from '../index.js';
import { HealthBeacon, healthFile } from './health.js';
import { loadApp } from './load-app.js';
import { metricsOptions, startMetrics, type MetricsCliOptions } from './metrics.js';
import { cliDuration, cliInteger, names, parseCli, parseQueues } from './options.js';
import { stopOnSignals } from './signals.js';

interface WorkerOpts extends MetricsCliOptions {
  app: string;
  queues?: string;
  concurrency: string;
  prefetch?: string;
  grace: string;
  claimIdle: string;
  healthFile?: string;
}

const Options = z.object({
  '--concurrency': cliInteger(1),
  '--prefetch': cliInteger(0).optional(),
  '--grace': cliDuration(),
  '--claim-idle': cliDuration(),
});

export function registerWorker(program: Command): void {
  metricsOptions(program.command('worker'))
    .description('run tasks from the given queues until SIGTERM/SIGINT')
    .requiredOption('--app <module>', 'module that exports the tasuki app (.js, or .ts with tsx installed)')
    .option('--queues <names>', 'comma-separated queues to serve (default: all of the app)')
    .option('--concurrency <n>', 'tasks run at once', '10')
    .option('--prefetch <n>', 'tasks fetched ahead of free slots (default max(concurrency, 16))')
    .option('--grace <duration>', 'on SIGTERM, time running tasks get to finish (25s, or ms: 25000)', '25s')
    .option(
      '--claim-idle <duration>',
      "take over a dead worker's tasks after this long without heartbeat",
      '30s',
    )
    .option('--health-file <path>', 'heartbeat file for `tasuki health` (default: $TASUKI_HEALTH_FILE)')
    .action(async (opts: WorkerOpts) => {
      const o = parseCli(Options, {
        '--concurrency': opts.concurrency,
        '--prefetch': opts.prefetch,
        '--grace': opts.grace,
        '--claim-idle': opts.claimIdle,
      });
      const queues = parseQueues(opts.queues);
      if (queues?.length === 0) {
        throw new OptionsError('command line', [{ path: '--queues', message: 'no queue names given' }]);
      }
      const { app } = await loadApp(opts.app);
      const unknown = (queues ?? []).filter((q) => !app.queues.includes(q));
      if (unknown.length) {
        await app.close();
        throw new OptionsError('command line', [
          {
            path: '--queues',
            message:
              `unknown queue ${names(unknown)}: the app in ${opts.app} declares ${names(app.queues)}; ` +
              `serve some of those, or add it to the app's \`queues\` option. No worker was started.`,
          },
        ]);
      }
      const worker = new Worker(app, {
        ...(queues ? { queues } : {}),
        concurrency: o['--concurrency'],
        ...(o['--prefetch'] !== undefined ? { prefetch: o['--prefetch'] } : {}),
        grace: o['--grace'],
        claimIdle: o['--claim-idle'],
      });
      // Handlers before start: a signal that comes while starting (or the moment "worker started" is
      // logged) stops the worker once started, instead of killing the process mid-start.
      // The container's health check (`tasuki health`): fresh while the worker runs and Redis answers.
      let running = false;
      const health = new HealthBeacon(
        healthFile(opts.healthFile),
        'worker',
        async () => running && (await app.redis()).ping().then(() => ({})),
        app.log,
      );
      const stopped = stopOnSignals({
        log: app.log,
        graceMs: o['--grace'],
        claimIdleMs: o['--claim-idle'],
        stop: () => {
          running = false;
          health.stop();
          return worker.stop();
        },
      });
      let metrics: Awaited<ReturnType<typeof startMetrics>>;
      try {
        // Before the worker starts: a port in use is a clear error, not a worker without metrics.
        metrics = await startMetrics(app, opts, worker);
        await worker.start();
        running = true;
        health.start();
        await stopped;
      } finally {
        await metrics?.close();
        await app.close();
      }
    });
}
