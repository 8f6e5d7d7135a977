import type { Redis } from 'ioredis';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import * as scripts from '../scripts/catalogue.js';
import { BackgroundLoop } from '../util/loop.js';

/**
 * Moves due tasks from each queue's delayed set into its stream. Every worker runs one; the
 * `promote` script is atomic, so several promoters never move a task twice. Sleeps until the
 * earliest due time, at most `maxIntervalMs`.
 */
export class Promoter extends BackgroundLoop {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TasukiKeys,
    private readonly queues: readonly string[],
    log: Logger,
    private readonly maxIntervalMs = 500,
  ) {
    super(log, 'promoting delayed tasks');
  }

  async runOnce(): Promise<number> {
    const now = Date.now();
    let next = Infinity;
    for (const queue of this.queues) {
      let r: [number, number];
      do {
        r = await scripts.run(
          this.redis,
          scripts.promote(
            {
              delayed: this.keys.delayed.key({ queue }),
              parked: this.keys.parked.key({ queue }),
              stream: this.keys.stream.key({ queue }),
            },
            { now, limit: 1000 },
          ),
        );
      } while (r[0] === 1000);
      if (r[1] >= 0) next = Math.min(next, r[1]);
    }
    return Math.max(5, Math.min(this.maxIntervalMs, next - Date.now()));
  }
}
