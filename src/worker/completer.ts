import type { Redis } from 'ioredis';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import { GROUP } from '../results/lookup.js';
import * as scripts from '../scripts/catalogue.js';
import { Incident } from '../util/incident.js';

/** Largest number of tasks finished by one script call. */
const MAX_BATCH = 500;
/** Approximate cap of each queue's completion stream. */
export const EVENTS_MAX_LEN = 10_000;

/**
 * Collects finished tasks and records them with one `finish` script call per queue and event-loop
 * turn: ack, delete the entry, store the result, announce the completion. If Redis is away the
 * finished tasks stay here and are sent again until Redis takes them, so results are not lost while
 * this process lives.
 */
export class Completer {
  private readonly pending = new Map<string, scripts.FinishedTask[]>();
  private size = 0;
  private scheduled = false;
  private inflight = new Set<Promise<void>>();
  private readonly incident: Incident;

  constructor(
    private readonly redis: Redis,
    private readonly keys: TasukiKeys,
    private readonly resultTtlMs: number,
    log: Logger,
  ) {
    this.incident = new Incident(log, 'recording finished tasks');
  }

  add(queue: string, task: scripts.FinishedTask): void {
    const list = this.pending.get(queue);
    if (list) list.push(task);
    else this.pending.set(queue, [task]);
    this.size++;
    if (this.size >= MAX_BATCH) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Tasks finished but not yet recorded in Redis. */
  get backlog(): number {
    return this.size;
  }

  private flush(): void {
    this.scheduled = false;
    for (const [queue, tasks] of this.pending) {
      this.pending.delete(queue);
      for (let i = 0; i < tasks.length; i += MAX_BATCH) this.send(queue, tasks.slice(i, i + MAX_BATCH));
    }
    this.size = 0;
  }

  private send(queue: string, tasks: scripts.FinishedTask[]): void {
    const call = scripts.finish(
      {
        stream: this.keys.stream.key({ queue }),
        events: this.keys.events.key({ queue }),
        parked: this.keys.parked.key({ queue }),
      },
      { group: GROUP, ttlMs: this.resultTtlMs, eventsMaxLen: EVENTS_MAX_LEN, tasks },
    );
    const p = scripts.run(this.redis, call).then(
      () => this.incident.ok(),
      (err: unknown) => {
        this.incident.fail(err);
        // Keep them and try again shortly; the entries stay pending in the stream meanwhile.
        setTimeout(() => {
          for (const t of tasks) this.add(queue, t);
        }, 500).unref();
        return new Promise<void>((r) => setTimeout(r, 500));
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Sends everything collected and waits until Redis has it (or `timeoutMs` passes). */
  async drain(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.size > 0) this.flush();
      if (this.inflight.size === 0 && this.size === 0) return true;
      await Promise.race([Promise.all(this.inflight), new Promise((r) => setTimeout(r, 50))]);
    }
    return this.size === 0 && this.inflight.size === 0;
  }
}
