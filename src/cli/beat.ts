import type { Command } from 'commander';
import { z } from 'zod';
import { Beat } from '../index.js';
import { HealthBeacon, healthFile } from './health.js';
import { loadApp } from './load-app.js';
import { metricsOptions, startMetrics, type MetricsCliOptions } from './metrics.js';
import { cliDuration, parseCli } from './options.js';
import { stopOnSignals } from './signals.js';

interface BeatOpts extends MetricsCliOptions {
  app: string;
  lease: string;
  standbyInterval: string;
  refresh: string;
  healthFile?: string;
}

const Options = z.object({
  '--lease': cliDuration({ min: 300 }),
  '--standby-interval': cliDuration({ min: 10 }),
  '--refresh': cliDuration({ min: 10 }),
});

export function registerBeat(program: Command): void {
  metricsOptions(program.command('beat'))
    .description(
      "enqueue the app's periodic schedules until SIGTERM/SIGINT; run any number: one is active, the others stand by",
    )
    .requiredOption('--app <module>', 'module that exports the tasuki app (.js, or .ts with tsx installed)')
    .option(
      '--lease <duration>',
      "TTL of the active beat's lease; a standby takes over this long after it dies",
      '10s',
    )
    .option('--standby-interval <duration>', 'how often a standby tries to take the lease', '1s')
    .option('--refresh <duration>', 'longest wait before run-time schedule changes are seen', '1s')
    .option('--health-file <path>', 'heartbeat file for `tasuki health` (default: $TASUKI_HEALTH_FILE)')
    .action(async (opts: BeatOpts) => {
      const o = parseCli(Options, {
        '--lease': opts.lease,
        '--standby-interval': opts.standbyInterval,
        '--refresh': opts.refresh,
      });
      const { app } = await loadApp(opts.app);
      // Before the beat starts: a metrics port in use is a clear error, not a beat without metrics.
      const metrics = await startMetrics(app, opts).catch(async (err: unknown) => {
        await app.close();
        throw err;
      });
      const beat = new Beat(
        app,
        {
          lease: o['--lease'],
          standbyInterval: o['--standby-interval'],
          refresh: o['--refresh'],
        },
        metrics ? { onTick: (e) => metrics.metrics.beatTick(e.schedule, e.outcome) } : {},
      );
      // Healthy while rounds reach Redis: a standby is healthy too (it is ready to take over).
      const maxRoundAge = Math.max(o['--lease'], o['--refresh'], o['--standby-interval']) * 2;
      const health = new HealthBeacon(
        healthFile(opts.healthFile),
        'beat',
        () => Promise.resolve(beat.sinceLastRoundMs() <= maxRoundAge && { leading: beat.leading }),
        app.log,
        Math.min(5000, o['--refresh']),
      );
      const stopped = stopOnSignals({
        log: app.log,
        graceMs: 0,
        claimIdleMs: o['--lease'],
        stopping: 'releasing the lease so a standby beat takes over at once',
        abandoning: `without releasing the lease; a standby takes over when it expires (within ${opts.lease})`,
        stop: async () => {
          health.stop();
          await beat.stop();
        },
      });
      try {
        await beat.start();
        health.start();
        await stopped;
      } finally {
        await metrics?.close();
        await app.close();
      }
    });
}
