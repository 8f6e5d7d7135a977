/**
 * A real OpenTelemetry SDK for tracing tests: a tracer provider with an in-memory exporter, and the
 * AsyncLocalStorage context manager (so a handler's spans nest under its run span), both global.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

export interface TestTracing {
  exporter: InMemorySpanExporter;
  /** Finished spans named `name`, in the order they ended. */
  spans(name: string): ReadableSpan[];
  close(): Promise<void>;
}

export function startTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return {
    exporter,
    spans: (name) => exporter.getFinishedSpans().filter((s) => s.name === name),
    close: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/** What a span is, as plain JSON (for spans that cross a process boundary in a test). */
export interface SpanJson {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Record<string, unknown>;
}

export function spanJson(s: ReadableSpan): SpanJson {
  const sc = s.spanContext();
  return {
    name: s.name,
    kind: s.kind,
    traceId: sc.traceId,
    spanId: sc.spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    attributes: { ...s.attributes },
  };
}
