/** Promotion of due delayed tasks and retries, run by every worker. */
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../log/logger.js';
import { BackgroundLoop } from '../util/loop.js';

/** Most delayed tasks moved by one promote call. */
const PROMOTE_LIMIT = 1000;

/**
 * Moves due tasks from each queue's delayed set into its stream. Every worker runs one; promotion
 * is atomic, so several promoters never move a task twice. Sleeps until the earliest due time, at
 * most `maxIntervalMs`.
 */
export class Promoter extends BackgroundLoop {
  /** When the next round is planned (ms since epoch). */
  private nextAt = 0;
  private wake: { at: number; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly queues: readonly string[],
    log: Logger,
    private readonly maxIntervalMs: number,
  ) {
    super(log, 'promoting delayed tasks');
  }

  async runOnce(): Promise<number> {
    const now = Date.now();
    let next = Infinity;
    for (const queue of this.queues) {
      let round: { moved: number; next: number };
      do {
        round = await this.broker.promote(queue, now, PROMOTE_LIMIT);
      } while (round.moved === PROMOTE_LIMIT);
      if (round.next >= 0) next = Math.min(next, round.next);
    }
    const delay = Math.max(5, Math.min(this.maxIntervalMs, next - Date.now()));
    this.nextAt = Date.now() + delay;
    return delay;
  }

  /**
   * This worker parked a task due at `due` (a rate-limit slot): promote no later than that, not at
   * the next planned round, which may be up to `maxIntervalMs` later, so held-back tasks start at
   * their slots instead of all at once.
   */
  wakeBy(due: number): void {
    if (due >= this.nextAt || (this.wake && this.wake.at <= due)) return;
    if (this.wake) clearTimeout(this.wake.timer);
    const timer = setTimeout(
      () => {
        this.wake = undefined;
        this.poke();
      },
      Math.max(0, due - Date.now()),
    );
    timer.unref();
    this.wake = { at: due, timer };
  }

  override async stop(): Promise<void> {
    if (this.wake) clearTimeout(this.wake.timer);
    this.wake = undefined;
    await super.stop();
  }
}
