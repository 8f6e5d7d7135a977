import type { Redis } from 'ioredis';
import type { Tasuki } from '../app/app.js';
import type { Logger } from '../log/logger.js';
import { GROUP } from '../results/lookup.js';
import { encodeRecord, toStoredError } from '../wire/record.js';
import * as scripts from '../scripts/catalogue.js';
import { Incident } from '../util/incident.js';
import { TasukiError } from '../errors.js';
import type { Attempt } from './runner.js';

/** Largest number of tasks finished by one script call. */
const MAX_BATCH = 500;
/** Approximate cap of each queue's completion stream. */
export const EVENTS_MAX_LEN = 10_000;

/**
 * Collects finished attempts and records them with one `finish` script call per queue and
 * event-loop turn: ack, delete the entry, store the record, park a retry or append a dead letter,
 * announce the completion. If Redis is away the attempts stay here and are sent again until Redis
 * takes them, so results are not lost while this process lives.
 */
export class Completer {
  private readonly pending = new Map<string, scripts.FinishedTask[]>();
  private size = 0;
  private scheduled = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly incident: Incident;

  constructor(
    private readonly redis: Redis,
    private readonly app: Tasuki,
    log: Logger,
  ) {
    this.incident = new Incident(log, 'recording finished tasks');
  }

  /** Queues an attempt's outcome for the next batch. */
  add(a: Attempt): void {
    let record: string;
    try {
      record = encodeRecord(a.record);
    } catch (err) {
      const error = toStoredError(
        new TasukiError('E_TASK_FAILED', `result is not JSON-serialisable: ${(err as Error).message}`),
      );
      record = encodeRecord({ ...a.record, state: 'failed', result: undefined, error });
    }
    const queue = a.fetched.queue;
    this.push(queue, {
      entry: a.fetched.entry,
      id: a.local,
      resultKey: this.app.keys.result.key({ queue, task: a.local }),
      record,
      outcome: a.outcome,
      parked: a.parked,
      due: a.due,
      payload: a.payload,
    });
  }

  private push(queue: string, task: scripts.FinishedTask): void {
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

  /** Attempts finished but not yet recorded in Redis. */
  get backlog(): number {
    return this.size + this.inflight.size;
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
    const k = this.app.keys;
    const call = scripts.finish(
      {
        stream: k.stream.key({ queue }),
        events: k.events.key({ queue }),
        parked: k.parked.key({ queue }),
        delayed: k.delayed.key({ queue }),
        dead: k.dead.key({ queue }),
      },
      {
        group: GROUP,
        ttlMs: this.app.resultTtlMs,
        eventsMaxLen: EVENTS_MAX_LEN,
        deadMaxLen: this.app.deadLetterMaxLen,
        deadMinId: `${Math.max(0, Date.now() - this.app.deadLetterRetentionMs)}-0`,
        tasks,
      },
    );
    const p = scripts.run(this.redis, call).then(
      () => this.incident.ok(),
      async (err: unknown) => {
        this.incident.fail(err);
        // Keep them and try again shortly; their entries stay pending in the stream meanwhile.
        await new Promise((r) => setTimeout(r, 500));
        for (const t of tasks) this.push(queue, t);
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
