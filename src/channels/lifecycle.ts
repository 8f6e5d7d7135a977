/**
 * tasuki's own task lifecycle events, published on one channel per queue (`tasuki.<queue>`): what
 * metrics and the dashboard read. Off unless the app says `events: true` (each enqueue then costs
 * one more command, batched per event-loop turn, and each recorded batch one script call per queue).
 */
import { z } from 'zod';
import type { Logger } from '../log/logger.js';
import { Channel, type ChannelHost } from './channel.js';

/** What happened to a task. */
export const TASK_EVENT_TYPES = [
  'enqueued',
  'started',
  'succeeded',
  'failed',
  'retried',
  'dead',
  'expired',
  'cancelled',
] as const;

/** Schema of a lifecycle event (zod, a Standard Schema). */
export const taskEventSchema = z.object({
  type: z.enum(TASK_EVENT_TYPES),
  /** Task id (`<local>@<queue>`). */
  id: z.string(),
  task: z.string(),
  queue: z.string(),
  /** When it happened, ms since the epoch. */
  at: z.number(),
  attempt: z.number().int().optional(),
  worker: z.string().optional(),
  /** failed, dead: the error's message. */
  error: z.string().optional(),
});

/** A lifecycle event. */
export type TaskEvent = z.infer<typeof taskEventSchema>;

/** The channel of a queue's lifecycle events. */
export function taskEventsChannel(host: ChannelHost, queue: string): Channel<typeof taskEventSchema> {
  return new Channel(host, { name: `tasuki.${queue}`, schema: taskEventSchema, maxLen: 100_000 });
}

/** Publishes lifecycle events: collected for one event-loop turn, then one publish per queue. */
export class LifecyclePublisher {
  private readonly channels = new Map<string, Channel<typeof taskEventSchema>>();
  private pending = new Map<string, TaskEvent[]>();
  private scheduled = false;
  private inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly host: ChannelHost,
    private readonly log: Logger,
  ) {}

  /** Queues events for publishing (never throws: a lost event is logged, never fails a task). */
  emit(events: readonly TaskEvent[]): void {
    for (const e of events) {
      const list = this.pending.get(e.queue);
      if (list) list.push(e);
      else this.pending.set(e.queue, [e]);
    }
    if (!this.scheduled && events.length) {
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
