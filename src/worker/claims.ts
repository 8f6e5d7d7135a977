import type { Redis } from 'ioredis';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import { GROUP } from '../results/lookup.js';
import * as scripts from '../scripts/catalogue.js';
import { BackgroundLoop } from '../util/loop.js';

/** What the claim loops need from their worker. */
export interface ClaimHost {
  readonly name: string;
  readonly queues: readonly string[];
  /** Entry ids held (fetched, running or waiting to run) per queue. */
  held(queue: string): string[];
  /** Room for more entries. */
  room(): number;
  /** Entries this worker no longer holds: stop caring about them. */
  lost(queue: string, entries: string[]): void;
  /** Entries taken over from a dead worker. */
  adopt(queue: string, entries: scripts.ReclaimReply): void;
}

/**
 * Renews this worker's claims: resets the idle time of every entry it holds, so a task on a live
 * worker is never reclaimed however long it runs. Entries it finds taken are reported as lost.
 */
export class Heartbeat extends BackgroundLoop {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TasukiKeys,
    private readonly host: ClaimHost,
    log: Logger,
    private readonly intervalMs: number,
  ) {
    super(log, 'renewing claims (heartbeat)');
    this.retryMs = Math.min(1000, intervalMs);
  }

  async runOnce(): Promise<number> {
    for (const queue of this.host.queues) {
      const entries = this.host.held(queue);
      if (entries.length === 0) continue;
      const lost = await scripts.run(
        this.redis,
        scripts.heartbeat(
          { stream: this.keys.stream.key({ queue }) },
          { group: GROUP, consumer: this.host.name, entries },
        ),
      );
      if (lost.length) this.host.lost(queue, lost);
    }
    return this.intervalMs;
  }
}

/**
 * Takes over tasks whose worker died: entries idle (no heartbeat) for longer than `idleMs` are
 * claimed with XAUTOCLAIM and run here.
 */
export class Reclaimer extends BackgroundLoop {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TasukiKeys,
    private readonly host: ClaimHost,
    log: Logger,
    private readonly idleMs: number,
    private readonly intervalMs: number,
  ) {
    super(log, 'reclaiming tasks of dead workers');
    this.retryMs = intervalMs;
  }

  async runOnce(): Promise<number> {
    for (const queue of this.host.queues) {
      const room = this.host.room();
      if (room <= 0) break;
      const taken = await scripts.run(
        this.redis,
        scripts.reclaim(
          { stream: this.keys.stream.key({ queue }) },
          { group: GROUP, consumer: this.host.name, idleMs: this.idleMs, count: room },
        ),
      );
      if (taken.length) this.host.adopt(queue, taken);
    }
    return this.intervalMs;
  }
}
