/**
 * The metrics endpoint: `GET /metrics` on a small HTTP server (node:http; one route needs no
 * framework). `tasuki worker --metrics-port` starts one; beat and apps can too.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TasukiError } from '../errors.js';
import type { TasukiMetrics } from './metrics.js';

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Where Prometheus scrapes, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `metrics` at `GET /metrics` on `host:port` (port 0: any free port). Rejects with `E_CONFIG`
 * when the port cannot be listened on (in use, no permission).
 */
export async function serveMetrics(
  metrics: TasukiMetrics,
  options: { port: number; host?: string },
): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new TasukiError(
          'E_CONFIG',
          `cannot serve metrics on ${host}:${options.port} (${err.code ?? err.message}); pick another --metrics-port`,
          { cause: err },
        ),
      ),
    );
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
