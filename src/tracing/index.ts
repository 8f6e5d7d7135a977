/**
 * `tasuki/tracing`: OpenTelemetry spans of task runs (needs `@opentelemetry/api`, an optional peer
 * dependency). See docs/metrics.md#tracing.
 */
export { traceTasks } from './tracing.js';
