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
    return Math.max(5, Math.min(this.maxIntervalMs, next - Date.now()));
  }
}
