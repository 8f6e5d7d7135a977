/**
 * The lifecycle every background loop shares (promoter, heartbeat, reclaimer, beat): idempotent
 * start and stop, and a `runOnce()` separate from the timer so tests can drive it step by step.
 */
export abstract class BackgroundLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private active = false;

  /** Does one round of work; resolves the delay in ms before the next round. */
  abstract runOnce(): Promise<number>;

  /** Called when a round throws; the loop goes on after `retryMs`. */
  protected abstract onError(err: unknown): void;

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
          if (this.active) this.schedule(next);
        },
        (err: unknown) => {
          this.running = undefined;
          this.onError(err);
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
