/**
 * OpenTelemetry spans of enqueues and runs, with the W3C trace context carried in the message
 * (`tasuki/tracing`; off unless the app is given {@link openTelemetry} as its `tracing` option).
 *
 * Follows the OpenTelemetry messaging conventions: an enqueue is a `PRODUCER` span (`send`), a run a
 * `CONSUMER` span (`process`). A worker processes one message per run, so a run span is a child of
 * its single enqueue's span, as the conventions allow for single-message processing; a bulk enqueue
 * is one span for many messages (the conventions' batch send), and each of its runs starts a trace
 * of its own with a link to it rather than growing one trace by thousands of children.
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import type { EnqueuedTask, RunSpanEnd, RunSpanStart, TaskTracer, TraceContext } from '../task/tracer.js';
import type { StoredError } from '../wire/record.js';

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** The tracer spans are made with (default: the global tracer provider's `tasuki` tracer). */
  tracer?: Tracer;
}

/**
 * A tracer for the app option `tracing`: `tasuki({ tracing: openTelemetry() })`. Configure an
 * OpenTelemetry SDK (tracer provider, exporter, and a context manager so a handler's spans nest)
 * as usual; without one, spans are not recorded and no context is carried.
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): TaskTracer {
  return new OpenTelemetryTracer(options.tracer);
}

class OpenTelemetryTracer implements TaskTracer {
  private readonly tracer: Tracer;

  constructor(tracer: Tracer | undefined) {
    // The global provider's tracer is a proxy: a provider registered after the app is used too.
    this.tracer = tracer ?? trace.getTracer('tasuki');
  }

  enqueue<H extends EnqueuedTask>(
    task: string,
    write: (t: TraceContext | undefined) => Promise<H>,
  ): Promise<H> {
    return this.send(task, undefined, write, (span, handle) => {
      span.setAttribute('messaging.destination.name', handle.queue);
      span.setAttribute('messaging.message.id', handle.id);
    });
  }

  enqueueMany<H extends EnqueuedTask>(
    task: string,
    count: number,
    write: (t: TraceContext | undefined) => Promise<H[]>,
  ): Promise<H[]> {
    return this.send(task, count, write, (span, handles) => {
      const queues = new Set(handles.map((h) => h.queue));
      if (queues.size === 1) span.setAttribute('messaging.destination.name', [...queues][0] as string);
    });
  }

  private send<T>(
    task: string,
    count: number | undefined,
    write: (t: TraceContext | undefined) => Promise<T>,
    done: (span: Span, written: T) => void,
  ): Promise<T> {
    const attributes: Attributes = {
      'messaging.system': 'tasuki',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'enqueue',
      'tasuki.task': task,
    };
    if (count !== undefined) attributes['messaging.batch.message_count'] = count;
    return this.tracer.startActiveSpan(
      `tasuki enqueue ${task}`,
      { kind: SpanKind.PRODUCER, attributes },
      async (span) => {
        try {
          const written = await write(carried(span.spanContext(), count !== undefined));
          done(span, written);
          return written;
        } catch (err) {
          failSpan(span, err instanceof Error ? err : { name: 'Error', message: String(err) });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  run<A>(start: RunSpanStart, attempt: () => Promise<A>, end: (attempt: A) => RunSpanEnd): Promise<A> {
    const from = start.trace === undefined ? undefined : received(start.trace);
    const parent = from && !start.trace?.link ? trace.setSpanContext(ROOT_CONTEXT, from) : ROOT_CONTEXT;
    const links: Link[] | undefined = from && start.trace?.link ? [{ context: from }] : undefined;
    const span = this.tracer.startSpan(
      `tasuki run ${start.task}`,
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: {
          'messaging.system': 'tasuki',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'run',
          'messaging.destination.name': start.queue,
          'messaging.message.id': start.id,
          'tasuki.task': start.task,
          'tasuki.attempt': start.attempt,
          'tasuki.worker': start.worker,
        },
      },
      parent,
    );
    return context.with(trace.setSpan(parent, span), attempt).then(
      (a) => {
        const { outcome, error } = end(a);
        span.setAttribute('tasuki.outcome', outcome);
        if (error && outcome !== 'succeeded' && outcome !== 'limited') failSpan(span, error);
        span.end();
        return a;
      },
      (err: unknown) => {
        // runAttempt never rejects; a tracer must not lose the error if it ever does.
        failSpan(span, err instanceof Error ? err : { name: 'Error', message: String(err) });
        span.end();
        throw err;
      },
    );
  }
}

function failSpan(
  span: Span,
  error: Pick<StoredError, 'name' | 'message'> & { stack?: string | undefined },
): void {
  span.recordException({ name: error.name, message: error.message, stack: error.stack });
  span.setStatus({ code: SpanStatusCode.ERROR, message: `${error.name}: ${error.message}` });
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The W3C trace context of a span, to carry in its messages; none for an invalid (unrecorded) one. */
function carried(sc: SpanContext, link: boolean): TraceContext | undefined {
  if (!isSpanContextValid(sc)) return undefined;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  const state = sc.traceState?.serialize();
  return {
    traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}`,
    tracestate: state ? state : undefined,
    link: link || undefined,
  };
}

/**
 * The remote span context a message carries, or `undefined` when its traceparent is not valid W3C
 * (version `ff`, a version 00 with extra fields, zero ids): the run is then a root span.
 */
function received(t: TraceContext): SpanContext | undefined {
  const m = TRACEPARENT.exec(t.traceparent);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const sc: SpanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16) & 1,
    isRemote: true,
    traceState: t.tracestate ? createTraceState(t.tracestate) : undefined,
  };
  return isSpanContextValid(sc) ? sc : undefined;
}
