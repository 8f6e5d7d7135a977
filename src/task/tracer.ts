/**
 * The seam tracing plugs into: what an enqueue and a worker's run ask of a tracer, with no
 * dependency on OpenTelemetry (its implementation is `tasuki/tracing`, the top layer). An app
 * without the `tracing` option has no tracer, and its enqueues and runs never call one.
 */
import type { TaskEventType } from '../events/event-map.js';
import type { StoredError } from '../wire/record.js';
import type { TraceContext } from '../wire/message.js';

export type { TraceContext } from '../wire/message.js';

/** What a span of an enqueue learns of the tasks it wrote. */
export interface EnqueuedTask {
  readonly id: string;
  readonly queue: string;
}

/** What a run span starts with: the attempt, and the trace context its message carries. */
export interface RunSpanStart {
  /** Task id, `<local>@<queue>`. */
  id: string;
  queue: string;
  task: string;
  attempt: number;
  worker: string;
  /** From the message; `undefined` when its producer did not trace. */
  trace: TraceContext | undefined;
}

/** What became of a traced attempt: an event type of the task event map, and its error if any. */
export interface RunSpanEnd {
  outcome: TaskEventType;
  error?: StoredError | undefined;
}

/**
 * Traces enqueues and runs (the app option `tracing`; see docs/metrics.md#tracing). Each method
 * wraps the work it traces, so the work runs inside the span's context.
 */
export interface TaskTracer {
  /**
   * Traces one enqueue of `task`: `write` is called with the trace context to put in the message
   * (`undefined` when there is none to carry) and resolves the task written.
   */
  enqueue<H extends EnqueuedTask>(
    task: string,
    write: (trace: TraceContext | undefined) => Promise<H>,
  ): Promise<H>;
  /** Traces a bulk enqueue of `count` items of `task` as one span; its messages link to it. */
  enqueueMany<H extends EnqueuedTask>(
    task: string,
    count: number,
    write: (trace: TraceContext | undefined) => Promise<H[]>,
  ): Promise<H[]>;
  /**
   * Traces one attempt: `attempt` runs inside the run span's context (so the handler's own spans are
   * its children); `end` says what became of it when it resolves. It must call `attempt` exactly
   * once and must not throw: what it returns is the attempt's outcome.
   */
  run<A>(start: RunSpanStart, attempt: () => Promise<A>, end: (attempt: A) => RunSpanEnd): Promise<A>;
}
