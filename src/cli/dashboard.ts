/**
 * `tasuki dashboard`: serves the web dashboard and its JSON API (src/dashboard) until SIGINT or
 * SIGTERM. Bound to 127.0.0.1 unless --host says otherwise; off loopback it needs a token.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { TasukiError } from '../index.js';
import { checkBinding } from '../dashboard/auth.js';
import { cliInteger, parseCli, parseQueues } from './options.js';
import { openQueues, sourceOptions, type AppSource } from './queues.js';

interface DashboardCli extends AppSource {
  queues?: string;
  host: string;
  port: string;
  token?: string;
}

export function registerDashboard(program: Command): void {
  sourceOptions(
    program.command('dashboard').description('serve the web dashboard and JSON API (Ctrl-C to stop)'),
  )
    .option(
      '--queues <names>',
      "comma-separated queues (default: the app's, or every queue workers have served)",
    )
    .option('--host <host>', 'interface to listen on; anything but loopback needs --token', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '7890')
    .option('--token <token>', 'required of every request (default TASUKI_DASHBOARD_TOKEN)')
    .action(async (o: DashboardCli) => {
      const { '--port': port } = parseCli(z.object({ '--port': cliInteger(0) }), { '--port': o.port });
      const token = o.token ?? (process.env.TASUKI_DASHBOARD_TOKEN || undefined);
      checkBinding(o.host, token); // before anything connects
      const { app, queues } = await openQueues(o, parseQueues(o.queues));
      try {
        if (queues.length === 0) {
          throw new TasukiError(
            'E_NOT_FOUND',
            `no queues under prefix "${app.keys.space.prefix}": no worker has served one yet (pass --queues or --app)`,
          );
        }
        // Loaded here, so other commands never load the web framework.
        const { serveDashboard } = await import('../dashboard/dashboard.js');
        const server = await serveDashboard(app, { host: o.host, port, token });
        process.stdout.write(`tasuki dashboard on ${server.url}${token ? ' (token required)' : ''}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await server.close();
      } finally {
        await app.close();
      }
    });
}
