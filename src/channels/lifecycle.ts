/**
 * The task event map's events, published on one channel per queue (`tasuki.<queue>`) when the app
 * says `events: true`: a durable, resumable copy of what the app's producers and workers emit in
 * process (src/events/event-map.ts is the one source; this is a transport of it, not a second kind
 * of event). Each enqueue and attempt then costs one more command, batched per event-loop turn and
 * queue; without the option nothing listens and nothing is built.
 */
import { z } from 'zod';
import type { EnqueueEventMap, TaskEvent, TaskEvents } from '../events/event-map.js';
import type { TypedEmitter } from '../events/emitter.js';
import type { Logger } from '../log/logger.js';
import { Channel, type ChannelHost } from './channel.js';

/** The event types a queue's channel carries: every one of the event map but the aliases `failed`, `task`. */
export const TASK_EVENT_TYPES = [
  'enqueued',
  'started',
  'succeeded',
  'retried',
  'dead',
  'expired',
  'released',
  'limited',
  'cancelled',
  'revoked',
] as const;

const storedError = z.object({
  name: z.string(),
  message: z.string(),
  stack: z.string().optional(),
  code: z.string().optional(),
});

/**
 * Schema of a channel's event (zod, a Standard Schema): an event of the task event map without a
 * `succeeded` event's result (look the task up by id for it; a result can be megabytes).
 */
export const taskEventSchema = z.object({
  type: z.enum(TASK_EVENT_TYPES),
  /** Task id (`<local>@<queue>`). */
  id: z.string(),
  task: z.string(),
  queue: z.string(),
  /** enqueued: when it was written. */
  at: z.number().optional(),
  attempt: z.number().int().optional(),
  worker: z.string().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  /** retried, dead, released, cancelled, revoked. */
  error: storedError.optional(),
  /** retried: when it runs again. */
  retryAt: z.number().optional(),
  /** dead: why (`max-attempts`, `not-retryable`...). */
  reason: z.string().optional(),
  /** limited: the reserved start slot. */
  slotAt: z.number().optional(),
  /** cancelled, revoked: who did it. */
  by: z.string().optional(),
});

/** An event as a queue's channel carries it. */
export type LifecycleEvent = z.infer<typeof taskEventSchema>;

/** The channel of a queue's events. */
export function taskEventsChannel(host: ChannelHost, queue: string): Channel<typeof taskEventSchema> {
  return new Channel(host, { name: `tasuki.${queue}`, schema: taskEventSchema, maxLen: 100_000 });
}

/**
 * Publishes the events of the emitters it follows (the app's enqueues, each worker): collected for
 * one event-loop turn, then one publish per queue.
 */
export class LifecyclePublisher {
  private readonly channels = new Map<string, Channel<typeof taskEventSchema>>();
  private pending = new Map<string, LifecycleEvent[]>();
  private scheduled = false;
  private inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly host: ChannelHost,
    private readonly log: Logger,
  ) {}

  /** Publishes the `enqueued` events of an app's producers. */
  followEnqueues(source: TypedEmitter<EnqueueEventMap>): void {
    source.on('enqueued', (e) => this.add(e));
  }

  /** Publishes a worker's `started` events and the outcome of each attempt. */
  followAttempts(source: TaskEvents): void {
    source.on('started', (e) => this.add(e)).on('task', (e) => this.add(withoutResult(e)));
  }

  /** Queues an event for publishing (never throws: a lost event is logged, never fails a task). */
  private add(e: LifecycleEvent): void {
    const list = this.pending.get(e.queue);
    if (list) list.push(e);
    else this.pending.set(e.queue, [e]);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    for (const [queue, events] of batches) {
      let channel = this.channels.get(queue);
      if (!channel) this.channels.set(queue, (channel = taskEventsChannel(this.host, queue)));
      const p = channel
        .publish(...events)
        .catch((err: unknown) =>
          this.log.warn({ err, queue, count: events.length }, 'could not publish task events'),
        )
        .finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  /** Waits until everything emitted so far was published (or failed). */
  async drain(): Promise<void> {
    while (this.scheduled || this.inflight.size) {
      if (this.scheduled) this.flush();
      await Promise.all(this.inflight);
    }
  }
}

function withoutResult(e: TaskEvent): LifecycleEvent {
  if (e.type !== 'succeeded') return e;
  const { result: _result, ...rest } = e;
  return rest;
}
