/**
 * OpenTelemetry spans of task runs, built from task events (`tasuki/tracing`; off unless you call
 * {@link traceTasks}). Each finished attempt becomes one `CONSUMER` span named `tasuki run <task>`,
 * with the attempt's real start and end times, attributes for queue, task, id, attempt and outcome,
 * and an error status with the exception for failed attempts. Because it reads events, it adds
 * nothing to a worker that is not traced.
 *
 * Not yet: enqueue spans and the trace context carried in the message (a run span is a root span,
 * not a child of its producer's trace) — that needs a message field and a hook in the run path.
 */
import { SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { TaskEvent, TaskEvents } from '../events/event-map.js';

/**
 * Records a span per finished attempt of `source` (a worker, or an app subscription) with `tracer`
 * (default: the global tracer provider's `tasuki` tracer). Returns a function that stops.
 */
export function traceTasks(source: TaskEvents, tracer: Tracer = trace.getTracer('tasuki')): () => void {
  const listener = (e: TaskEvent): void => {
    const span = tracer.startSpan(`tasuki run ${e.task}`, {
      kind: SpanKind.CONSUMER,
      startTime: e.startedAt,
      attributes: {
        'messaging.system': 'tasuki',
        'messaging.destination.name': e.queue,
        'messaging.message.id': e.id,
        'tasuki.task': e.task,
        'tasuki.attempt': e.attempt,
        'tasuki.outcome': e.type,
        'tasuki.worker': e.worker,
      },
    });
    if (e.type === 'retried' || e.type === 'dead' || e.type === 'released') {
      span.recordException(
        { name: e.error.name, message: e.error.message, stack: e.error.stack },
        e.finishedAt,
      );
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${e.error.name}: ${e.error.message}` });
    }
    span.end(e.finishedAt);
  };
  source.on('task', listener);
  return () => void source.off('task', listener);
}
