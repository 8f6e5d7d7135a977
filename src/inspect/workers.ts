/**
 * Workers as they describe themselves (their presence records, src/wire/presence.ts), with the
 * tasks each holds now. A worker silent for three of its intervals is shown as not alive; one
 * silent for an hour is left out (live workers delete such records: src/worker/presence.ts). Reads
 * only, so it works as a read-only Redis user.
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import { GROUP } from '../wire/fields.js';
import { entryRef } from '../wire/priority.js';
import { decodePresence, type WorkerPresence } from '../wire/presence.js';

/** A worker, as `listWorkers` reports it. */
export interface WorkerInfo extends WorkerPresence {
  /** It wrote its record within three of its intervals. */
  alive: boolean;
  /** Ms since its last record (its last heartbeat). */
  silentMs: number;
  /** Task entries it holds now, per queue (at most `held` of them per queue). */
  holding: { queue: string; entry: string; idleMs: number }[];
}

/** A worker silent this long is forgotten (crashed without removing its record). */
export const FORGET_MS = 60 * 60 * 1000;

/** Lists the workers that published a presence, newest first; `held`: entries shown per queue. */
export async function listWorkers(
  redis: RedisConnection,
  keys: TasukiKeys,
  held = 10,
  now = Date.now(),
): Promise<WorkerInfo[]> {
  try {
    const all = await redis.hgetall(keys.workers.key({}));
    const workers: WorkerInfo[] = [];
    for (const raw of Object.values(all)) {
      const p = decodePresence(raw);
      const silentMs = p ? Math.max(0, now - p.seenAt) : Infinity;
      if (!p || silentMs > FORGET_MS) continue;
      workers.push({ ...p, alive: silentMs <= 3 * p.intervalMs, silentMs, holding: [] });
    }
    const pipe = redis.pipeline();
    const asked: [WorkerInfo, string, number][] = [];
    for (const w of workers) {
      for (const queue of w.queues) {
        // The queue's stream and its priority levels' (a level without a stream answers an error).
        queueStreams(keys, queue).forEach((stream, level) => {
          pipe.xpending(stream, GROUP, '-', '+', held, w.name);
          asked.push([w, queue, level]);
        });
      }
    }
    const replies = asked.length ? ((await pipe.exec()) ?? []) : [];
    asked.forEach(([w, queue, level], i) => {
      const rows = (replies[i]?.[1] ?? []) as [string, string, number, number][];
      for (const [entry, , idle] of rows)
        w.holding.push({ queue, entry: entryRef(entry, level), idleMs: Number(idle) });
    });
    return workers.sort((a, b) => b.startedAt - a.startedAt);
  } catch (err) {
    throw redisError('listing workers', err, { wrote: false });
  }
}
