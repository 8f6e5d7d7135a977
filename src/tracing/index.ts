/**
 * `tasuki/tracing`: OpenTelemetry spans of enqueues and runs, with the trace context carried in the
 * message (needs `@opentelemetry/api`, an optional peer dependency). See docs/metrics.md#tracing.
 */
export { openTelemetry, type OpenTelemetryOptions } from './tracing.js';
export type { RunSpanEnd, RunSpanStart, TaskTracer, TraceContext } from '../task/tracer.js';
