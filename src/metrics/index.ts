/**
 * `tasuki/metrics`: Prometheus metrics of an app (prom-client). A subpath of its own, so apps that
 * do not export metrics never load prom-client. See docs/metrics.md.
 */
export { TasukiMetrics, type MetricsApp, type MetricsOptions } from './metrics.js';
export { serveMetrics, type MetricsServer } from './server.js';
