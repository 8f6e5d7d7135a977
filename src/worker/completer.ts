/**
 * Records finished attempts in batches: one `settle` call per queue and event-loop turn (ack, delete
 * the entry, store the record, park a retry or append a dead letter, announce the completion). If
 * the broker refuses (Redis away), the attempts stay here and are sent again until it takes them;
 * their deliveries stay held (and renewed) until then, so no other worker runs them again.
 */
import type { Broker, Settlement } from '../broker/broker.js';
import type { Logger } from '../log/logger.js';
import { Incident } from '../util/incident.js';
import type { Attempt } from './runner.js';

/** Largest number of tasks finished by one call. */
const MAX_BATCH = 500;
/** Wait before sending a refused batch again, ms. */
const RESEND_MS = 500;
const NONE_STALE: ReadonlySet<string> = new Set();

export class Completer {
  private readonly pending = new Map<string, Attempt[]>();
  private size = 0;
  private scheduled = false;
  private readonly inflight = new Set<Promise<void>>();
  private readonly incident: Incident;

  /**
   * @param recorded - called with attempts once the broker took them, so their deliveries can be
   *   let go; `stale` names the entries whose outcome was not recorded because another worker took
   *   them over meanwhile (fenced attempts).
   */
  constructor(
    private readonly broker: Broker,
    /** The worker's consumer name: only what it still holds is recorded. */
    private readonly consumer: string,
    log: Logger,
    private readonly recorded: (attempts: readonly Attempt[], stale: ReadonlySet<string>) => void,
  ) {
    this.incident = new Incident(log, 'recording finished tasks');
  }

  /** Queues an attempt's outcome for the next batch (a `release` is never recorded). */
  add(attempt: Attempt): void {
    if (attempt.outcome === 'release') return;
    const queue = attempt.held.queue;
    const list = this.pending.get(queue);
    if (list) list.push(attempt);
    else this.pending.set(queue, [attempt]);
    this.size++;
    if (this.size >= MAX_BATCH) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Attempts finished but not yet recorded. */
  get backlog(): number {
    return this.size + this.inflight.size;
  }

  private flush(): void {
    this.scheduled = false;
    for (const [queue, attempts] of this.pending) {
      this.pending.delete(queue);
      for (let i = 0; i < attempts.length; i += MAX_BATCH) this.send(queue, attempts.slice(i, i + MAX_BATCH));
    }
    this.size = 0;
  }

  private send(queue: string, attempts: Attempt[]): void {
    const settlements: Settlement[] = attempts.map((a) => ({
      entry: a.held.entry,
      id: a.local,
      record: a.encoded,
      outcome: a.outcome as Settlement['outcome'], // never 'release': add() keeps those out
      parked: a.parked,
      dropRecord: a.dropRecord,
      deliveries: a.held.deliveries,
      due: a.due,
      payload: a.payload,
      canvas: a.held.message?.canvas,
    }));
    const p = this.broker.settle(queue, this.consumer, settlements).then(
      (stale) => {
        this.incident.ok();
        this.recorded(attempts, stale.length ? new Set(stale) : NONE_STALE);
      },
      async (err: unknown) => {
        this.incident.fail(err);
        // Keep them and try again shortly; their deliveries stay held and renewed meanwhile.
        await new Promise((r) => setTimeout(r, RESEND_MS));
        for (const a of attempts) this.add(a);
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Sends everything collected and waits until it is recorded (or `timeoutMs` passes). */
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
