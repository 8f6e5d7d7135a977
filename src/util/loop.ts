/** The one lifecycle of every background loop (heartbeat, reclaimer, promoter, sweeper, beat). */
import type { Logger } from '../log/logger.js';
import { Incident } from './incident.js';

/**
 * The lifecycle every background loop shares (promoter, heartbeat, reclaimer, beat): idempotent
 * start and stop, a `runOnce()` separate from the timer so tests can drive it step by step, and
 * failures logged once per incident (then once on recovery), not once per round.
 */
export abstract class BackgroundLoop {
  private readonly incident: Incident;

  /** @param what - what the loop does, for its log lines (e.g. "promoting delayed tasks"). */
  constructor(log: Logger, what: string) {
    this.incident = new Incident(log, what);
  }

  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;

  /** Does one round of work; resolves the delay in ms before the next round. */
  abstract runOnce(): Promise<number>;

  protected retryMs = 1000;

  start(): void {
    if (this.active) return;
    this.active = true;
    this.schedule(0);
  }

  /** Wakes the loop now instead of at its next planned round. */
  poke(): void {
    if (!this.active || this.running) return;
    clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.running = this.runOnce().then(
        (next) => {
          this.running = undefined;
          this.incident.ok();
          if (this.active) this.schedule(next);
        },
        (err: unknown) => {
          this.running = undefined;
          this.incident.fail(err);
          if (this.active) this.schedule(this.retryMs);
        },
      );
    }, ms);
    this.timer.unref();
  }

  /** Stops the loop and waits for a round in progress to end. */
  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    await this.running;
  }
}
