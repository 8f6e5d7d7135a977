/**
 * `--metrics-port` / `--metrics-host` for long-running commands (`tasuki worker`; beat uses the same
 * two): a Prometheus endpoint for the process, fed by its own task events.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import type { TaskEvents, Tasuki } from '../index.js';
import type { TasukiMetrics } from '../metrics/metrics.js';
import type { MetricsServer } from '../metrics/server.js';
import { cliInteger, parseCli } from './options.js';

export interface MetricsCliOptions {
  metricsPort?: string;
  metricsHost: string;
}

/** Adds the metrics options to a command. */
export function metricsOptions(cmd: Command): Command {
  return cmd
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics')
    .option(
      '--metrics-host <host>',
      'interface of the metrics endpoint (0.0.0.0 to let a remote Prometheus scrape)',
      '127.0.0.1',
    );
}

/** A running metrics endpoint and what feeds it. */
export interface CliMetrics {
  metrics: TasukiMetrics;
  server: MetricsServer;
  close(): Promise<void>;
}

/**
 * Starts the endpoint when `--metrics-port` was given (`undefined` otherwise), counting the events
 * of `source` (the process's worker). Logs where it serves.
 */
export async function startMetrics(
  app: Tasuki,
  o: MetricsCliOptions,
  source?: TaskEvents,
): Promise<CliMetrics | undefined> {
  if (o.metricsPort === undefined) return undefined;
  const { '--metrics-port': port } = parseCli(z.object({ '--metrics-port': cliInteger(0) }), {
    '--metrics-port': o.metricsPort,
  });
  // Loaded only when asked for, so a worker without metrics never loads prom-client.
  const [{ TasukiMetrics }, { serveMetrics }] = await Promise.all([
    import('../metrics/metrics.js'),
    import('../metrics/server.js'),
  ]);
  const metrics = new TasukiMetrics(app);
  if (source) metrics.observe(source);
  const server = await serveMetrics(metrics, { port, host: o.metricsHost });
  app.log.info({ url: server.url }, 'serving metrics');
  return {
    metrics,
    server,
    close: async () => {
      metrics.close();
      await server.close();
    },
  };
}
