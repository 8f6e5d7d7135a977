/**
 * The claim loops of a worker: the heartbeat renews its claims on what it holds, the reclaimer takes
 * over deliveries of dead workers, and idle consumers of dead workers are forgotten.
 */
import type { Broker, Delivery } from '../broker/broker.js';
import type { Logger } from '../log/logger.js';
import { BackgroundLoop } from '../util/loop.js';

/** What the claim loops need from their worker. */
export interface ClaimHost {
  readonly name: string;
  readonly queues: readonly string[];
  /** Entry ids held (fetched, running, or waiting for their outcome to be recorded) per queue. */
  held(queue: string): string[];
  /** Room for more entries. */
  room(): number;
  /** Entries this worker no longer holds: stop caring about them. */
  lost(queue: string, entries: string[]): void;
  /** Deliveries taken over from a dead worker. */
  adopt(deliveries: Delivery[]): void;
}

/**
 * What a worker drives of its heartbeat: the in-process {@link Heartbeat}, or the heartbeat thread
 * (./heartbeat-thread.ts) that renews claims while the event loop is busy.
 */
export interface ClaimRenewer {
  start(): void;
  /** Resolves once claims are being renewed (after start), so the worker can take tasks. */
  started(): Promise<void>;
  /** Stops renewing; resolves once no round is in progress. */
  stop(): Promise<void>;
  /** One round now; resolves the delay before the next. */
  runOnce(): Promise<number>;
  /** The worker's holdings grew (new or adopted deliveries): renew them from now on. */
  grew(added: readonly Delivery[]): void;
}

/**
 * Renews this worker's claims: resets the idle time of every entry it holds, so a task on a live
 * worker is never reclaimed however long it runs. Entries it finds taken are reported as lost.
 * It runs on the event loop, so a handler that blocks the loop stops it too: workers renew from a
 * thread (./heartbeat-thread.ts) and fall back to this one when the thread cannot run.
 */
export class Heartbeat extends BackgroundLoop implements ClaimRenewer {
  constructor(
    private readonly broker: Broker,
    private readonly host: ClaimHost,
    log: Logger,
    private readonly intervalMs: number,
  ) {
    super(log, 'renewing claims (heartbeat)');
    this.retryMs = Math.min(1000, intervalMs);
  }

  /** At once: it renews from its first round. */
  started(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing to do: each round reads what the worker holds. */
  grew(_added: readonly Delivery[]): void {}

  async runOnce(): Promise<number> {
    for (const queue of this.host.queues) {
      const entries = this.host.held(queue);
      if (entries.length === 0) continue;
      const lost = await this.broker.renew(queue, this.host.name, entries);
      if (lost.length) this.host.lost(queue, lost);
    }
    return this.intervalMs;
  }
}

/**
 * Takes over tasks whose worker died: entries idle (no heartbeat) for longer than `idleMs` are
 * claimed and run here. After this worker could not reach the broker, it waits one `idleMs` before
 * reclaiming again: every worker's heartbeats stopped during the outage too, and their owners must
 * get the chance to renew before anyone takes their tasks (a restart from AOF shows every entry idle).
 */
export class Reclaimer extends BackgroundLoop {
  /** The connection to the broker is down: no reclaims (a queued one would run at reconnect). */
  private down = false;
  private quietUntil = 0;
  /** Lost connections so far: a reclaim sent before one is re-sent by ioredis at reconnect. */
  private disconnects = 0;

  constructor(
    private readonly broker: Broker,
    private readonly host: ClaimHost,
    log: Logger,
    private readonly idleMs: number,
    private readonly intervalMs: number,
  ) {
    super(log, 'reclaiming tasks of dead workers');
    this.retryMs = intervalMs;
  }

  /** The connection to the broker was lost: reclaim nothing until it is back and owners renewed. */
  disconnected(): void {
    this.down = true;
    this.disconnects++;
  }

  /**
   * The broker is reachable again, or a call to it failed: wait one idle time before reclaiming, so
   * the owners of entries that look idle (every heartbeat stopped too) renew them first.
   */
  outage(): void {
    this.down = false;
    this.quietUntil = Date.now() + this.idleMs;
  }

  async runOnce(): Promise<number> {
    const now = Date.now();
    if (this.down) return this.intervalMs;
    if (now < this.quietUntil) return Math.min(this.intervalMs, this.quietUntil - now);
    try {
      for (const queue of this.host.queues) {
        const room = this.host.room();
        if (room <= 0) break;
        const before = this.disconnects;
        const taken = await this.broker.reclaim(queue, this.host.name, this.idleMs, room);
        // A reclaim that spanned a lost connection ran at reconnect, before the owners could renew:
        // what it took is not run here, and the take-over is undone (delivery counts restored, not
        // idle), so an owner that finished meanwhile still records its outcome (fenced attempts
        // accept the count it claimed at); others find they lost it, and it is reclaimed later.
        if (this.disconnects !== before) {
          if (taken.length) await this.broker.release(queue, this.host.name, 0, taken);
          continue;
        }
        if (taken.length) this.host.adopt(taken);
      }
    } catch (err) {
      this.outage();
      throw err;
    }
    return this.intervalMs;
  }
}

/**
 * Forgets consumers of dead workers: the consumer group would otherwise keep one name per worker
 * that ever ran (one per deploy and restart). Only consumers that hold nothing and have been idle
 * longer than `idleMs` go; a live worker reads every few seconds, so it is never idle that long.
 */
export class ConsumerSweeper extends BackgroundLoop {
  constructor(
    private readonly broker: Broker,
    private readonly queues: readonly string[],
    private readonly log: Logger,
    private readonly idleMs: number,
    private readonly intervalMs: number,
  ) {
    super(log, 'forgetting consumers of dead workers');
    this.retryMs = intervalMs;
  }

  async runOnce(): Promise<number> {
    for (const queue of this.queues) {
      const gone = await this.broker.forgetIdleConsumers(queue, this.idleMs);
      if (gone.length) this.log.info({ queue, consumers: gone }, 'forgot idle consumers of dead workers');
    }
    return this.intervalMs;
  }
}
