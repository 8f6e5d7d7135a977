/**
 * The dashboard: a Hono app with the JSON API under `/api`, the page at `/`, a token when one is
 * set (required off loopback) and CSRF checks on every POST; {@link serveDashboard} serves it with
 * `@hono/node-server`. See docs/dashboard.md.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { Tasuki } from '../app/app.js';
import { TasukiError } from '../errors.js';
import { api } from './api.js';
import { checkBinding, newSecret, requireCsrf, requireToken } from './auth.js';
import { LiveFeed } from './live.js';
import { overview } from './overview.js';
import { page } from './ui/page.js';
import { CLIENT_JS } from './ui/client.js';

export interface DashboardOptions {
  /** Required on every request when set (`Authorization: Bearer`, or `/?token=` once for a cookie). */
  token?: string | undefined;
}

/** A dashboard not yet listening: its Hono app (`fetch` for tests) and its live feed. */
export interface Dashboard {
  readonly hono: Hono;
  /** Stops the live feed. */
  close(): Promise<void>;
}

export function createDashboard(app: Tasuki, options: DashboardOptions = {}): Dashboard {
  const csrfToken = newSecret();
  const live = new LiveFeed({ subscribe: () => app.subscribe(), overview: () => overview(app) });
  const hono = new Hono();
  hono.use('*', async (c, next) => {
    await next();
    c.header('x-content-type-options', 'nosniff');
    c.header('x-frame-options', 'DENY');
    c.header('referrer-policy', 'no-referrer');
  });
  hono.use('*', requireToken(options.token));
  hono.use('*', ...requireCsrf(csrfToken));
  hono.route('/api', api(app, live));
  hono.get('/app.js', (c) => c.body(CLIENT_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  hono.get('/favicon.ico', (c) => c.body(null, 204));
  hono.get('/', (c) => c.html(page(csrfToken, app.keys.space.prefix)));
  return { hono, close: () => live.close() };
}

/** A listening dashboard. */
export interface DashboardServer {
  /** Where it listens, e.g. `http://127.0.0.1:7890/`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the dashboard on `host:port` (default 127.0.0.1; port 0: any free one). Off loopback a
 * token is required: without one this rejects with `E_CONFIG` and nothing listens.
 */
export async function serveDashboard(
  app: Tasuki,
  options: DashboardOptions & { host?: string; port: number },
): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  checkBinding(host, options.token);
  const dashboard = createDashboard(app, options);
  let server!: ServerType;
  await new Promise<void>((resolve, reject) => {
    server = serve({ fetch: dashboard.hono.fetch, hostname: host, port: options.port }, () => resolve());
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new TasukiError(
          'E_CONFIG',
          `cannot serve the dashboard on ${host}:${options.port} (${err.code ?? err.message}); pick another --port`,
          { cause: err },
        ),
      ),
    );
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    close: async () => {
      await dashboard.close();
      // Open event streams would keep close() waiting: end them.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
