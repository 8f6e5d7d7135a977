/**
 * The worker's presence: every few seconds one HSET of its presence record (src/wire/presence.ts)
 * into the `workers` hash, and an HDEL when it stops; every five minutes it also deletes records
 * of workers silent for an hour (they crashed). One command per interval, none per task.
 */
import { hostname } from 'node:os';
import type { RedisConnection } from '../connection/redis.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import { BackgroundLoop } from '../util/loop.js';
import { decodePresence, encodePresence } from '../wire/presence.js';

/** How often a worker writes its presence, ms. */
export const PRESENCE_INTERVAL_MS = 5000;
/** Records silent this long are of crashed workers: deleted by any live worker. */
const FORGET_MS = 60 * 60 * 1000;
/** Rounds between two looks for such records (every 5 minutes). */
const PRUNE_ROUNDS = 60;

/** What the presence reads of its worker (a `Worker` is one). */
export interface PresenceHost {
  readonly name: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly inFlight: number;
  readonly counts: object;
}

export class Presence extends BackgroundLoop {
  private readonly startedAt = Date.now();
  private rounds = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: TasukiKeys,
    private readonly worker: PresenceHost,
    log: Logger,
  ) {
    super(log, 'publishing worker presence');
  }

  async runOnce(): Promise<number> {
    const w = this.worker;
    const record = encodePresence({
      name: w.name,
      host: hostname(),
      pid: process.pid,
      queues: [...w.queues],
      concurrency: w.concurrency,
      inFlight: w.inFlight,
      counts: { ...(w.counts as Record<string, number>) },
      startedAt: this.startedAt,
      seenAt: Date.now(),
      intervalMs: PRESENCE_INTERVAL_MS,
    });
    const key = this.keys.workers.key({});
    await this.redis.hset(key, w.name, record);
    if (this.rounds++ % PRUNE_ROUNDS === 0) {
      const now = Date.now();
      const gone = Object.entries(await this.redis.hgetall(key))
        .filter(([, raw]) => (decodePresence(raw)?.seenAt ?? 0) < now - FORGET_MS)
        .map(([name]) => name);
      if (gone.length) await this.redis.hdel(key, ...gone);
    }
    return PRESENCE_INTERVAL_MS;
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.redis.hdel(this.keys.workers.key({}), this.worker.name).catch(() => undefined);
  }
}
