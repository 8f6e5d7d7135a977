/**
 * What a worker holds: every delivery from the moment it is fetched until its outcome is recorded
 * (not merely until its handler returns), so its claim is renewed all that time and no other worker
 * takes over a task whose outcome is only waiting for Redis.
 */
import type { Delivery } from '../broker/broker.js';
import type { ProgressTracker } from '../progress/writer.js';
import type { TaskMessage } from '../wire/message.js';

/** A delivery a worker holds, with what its attempt learns about it. */
export interface Held extends Delivery {
  /** Made when the handler first reads `ctx.signal`. */
  controller?: AbortController;
  /** Why the attempt was aborted, if it was (before or after the handler read its signal). */
  abortReason?: Error;
  /** The attempt's progress, made on its first `ctx.progress` (absent for most tasks). */
  progress?: ProgressTracker;
  /** Decoded message, once decoded. */
  message?: TaskMessage;
  /** The attempt finished; its outcome waits to be recorded (set by {@link Holdings}). */
  finished?: boolean;
  /** Lost to another worker or handed back: its outcome must not be recorded (set by {@link Holdings}). */
  dropped?: boolean;
  /** Cancelled while it ran (`app.cancel`), by whom: the attempt ends as cancelled, whatever it returns. */
  cancelledBy?: string;
  /** Order in which the worker took it: for the fair turn among priority levels ({@link Holdings.next}). */
  seq?: number;
}

/**
 * While deliveries of several priority levels wait, the one waiting longest starts after this many
 * newer ones of higher levels started before it, so a lower level waiting in a worker's buffer is
 * never starved by a stream of higher ones.
 */
export const FAIR_START_AFTER = 4;

/** Aborts a held delivery's handler (now, or as soon as it looks at its signal). */
export function abortHeld(held: Held, reason: Error): void {
  held.abortReason = reason;
  held.controller?.abort(reason);
}

/** The signal of a held delivery's attempt, made on first use. */
export function signalOf(held: Held): AbortSignal {
  if (!held.controller) {
    held.controller = new AbortController();
    if (held.abortReason) held.controller.abort(held.abortReason);
  }
  return held.controller.signal;
}

export class Holdings {
  private readonly byQueue = new Map<string, Map<string, Held>>();
  /** Fetched and not started: higher priority levels first, then oldest first. */
  private readonly ready: Held[] = [];
  private total = 0;
  private finishedCount = 0;
  /** Deliveries taken so far (their {@link Held.seq}). */
  private taken = 0;
  /** Newer deliveries started before the one waiting longest, since it began to wait or last went. */
  private passedOver = 0;

  constructor(queues: readonly string[]) {
    for (const q of queues) this.byQueue.set(q, new Map());
  }

  /** Deliveries held: waiting to run, running, or waiting for their outcome to be recorded. */
  get count(): number {
    return this.total;
  }

  get readyCount(): number {
    return this.ready.length;
  }

  /**
   * Deliveries that take a worker's room: waiting to run or running. Finished ones waiting for
   * their outcome to be recorded stay held (and renewed) but free their room, so the next batch is
   * fetched while the last one is recorded — unless their outcomes pile up (Redis refusing them),
   * when they count again and fetching stops.
   */
  busy(capacity: number): number {
    return this.finishedCount > capacity ? this.total : this.total - this.finishedCount;
  }

  /** The attempt finished; its outcome waits to be recorded. */
  markFinished(held: Held): void {
    if (held.finished) return;
    held.finished = true;
    this.finishedCount++;
  }

  isFinished(held: Held): boolean {
    return held.finished === true;
  }

  has(queue: string, entry: string): boolean {
    return this.byQueue.get(queue)?.has(entry) ?? false;
  }

  get(queue: string, entry: string): Held | undefined {
    return this.byQueue.get(queue)?.get(entry);
  }

  /**
   * The delivery of a queue a control message names by its {@link Delivery.controlKey} (RabbitMQ:
   * the task id). A scan: control messages are rare, and a worker holds few deliveries.
   */
  byControlKey(queue: string, key: string): Held | undefined {
    for (const held of this.byQueue.get(queue)?.values() ?? []) if (held.controlKey === key) return held;
    return undefined;
  }

  /** Entry ids held for a queue. */
  entries(queue: string): string[] {
    return [...(this.byQueue.get(queue)?.keys() ?? [])];
  }

  /** Every held delivery. */
  all(): Held[] {
    return [...this.byQueue.values()].flatMap((m) => [...m.values()]);
  }

  /** Takes a new delivery; it waits to run. False when it is held already (or not for a served queue). */
  take(held: Held): boolean {
    const map = this.byQueue.get(held.queue);
    if (!map || map.has(held.entry)) return false;
    map.set(held.entry, held);
    this.total++;
    held.seq = ++this.taken;
    const ready = this.ready;
    const level = held.level;
    // Level 0 (every task of a queue without levels) goes last; a higher level before the first
    // delivery of a lower one, so the worker's buffer runs higher levels first.
    if (level === 0 || ready.length === 0 || (ready[ready.length - 1] as Held).level >= level)
      ready.push(held);
    else
      ready.splice(
        ready.findIndex((h) => h.level < level),
        0,
        held,
      );
    return true;
  }

  /**
   * The next delivery to run, if any: the first of the highest priority level waiting — unless the
   * delivery waiting longest (of a lower level) has seen {@link FAIR_START_AFTER} newer ones start
   * before it: then it starts.
   */
  next(): Held | undefined {
    const ready = this.ready;
    const head = ready[0];
    // One level waiting (every queue without levels): in order, nothing to look at.
    if (head === undefined || head.level === (ready[ready.length - 1] as Held).level) {
      this.passedOver = 0;
      return ready.shift();
    }
    let oldest = 0;
    for (let i = 1; i < ready.length; i++)
      if (((ready[i] as Held).seq ?? 0) < ((ready[oldest] as Held).seq ?? 0)) oldest = i;
    if (oldest === 0 || this.passedOver >= FAIR_START_AFTER) {
      this.passedOver = 0;
      return ready.splice(oldest, 1)[0];
    }
    this.passedOver++;
    return ready.shift();
  }

  /** Every delivery not started yet, removed from the ready list (they stay held). */
  takeUnstarted(): Held[] {
    return this.ready.splice(0);
  }

  /** The deliveries of one queue not started yet, removed from the ready list (they stay held). */
  takeUnstartedOf(queue: string): Held[] {
    const out: Held[] = [];
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const held = this.ready[i] as Held;
      if (held.queue !== queue) continue;
      this.ready.splice(i, 1);
      out.unshift(held);
    }
    return out;
  }

  /** Takes a delivery out of the ready list; false when it is not there (started, or not held). */
  unready(held: Held): boolean {
    const i = this.ready.indexOf(held);
    if (i < 0) return false;
    this.ready.splice(i, 1);
    return true;
  }

  /** True when the delivery was dropped and its outcome must not be recorded. */
  isDropped(held: Held): boolean {
    return held.dropped === true;
  }

  /** Lets go of a delivery whose outcome is recorded (or that was left for another worker). */
  release(held: Held): void {
    if (!this.byQueue.get(held.queue)?.delete(held.entry)) return;
    this.total--;
    if (held.finished) {
      held.finished = false;
      this.finishedCount--;
    }
  }

  /** Lets go of a delivery and aborts its attempt: its outcome will not be recorded here. */
  drop(held: Held, reason: Error): void {
    held.dropped = true;
    this.release(held);
    const i = this.ready.indexOf(held);
    if (i >= 0) this.ready.splice(i, 1);
    abortHeld(held, reason);
  }
}
