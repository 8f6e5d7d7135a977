/**
 * Locks held now: a SCAN for lock keys (bounded: at most `limit` locks, and a bounded number of SCAN
 * steps), then each one's owner token, time to live and fence counter in one pipeline.
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';

/** A held lock. */
export interface HeldLock {
  /** The lock's name (as in its key: a long one is its hash). */
  name: string;
  key: string;
  /** Random owner token of the holder (not the fencing token). */
  owner: string;
  /** Ms until it expires unless renewed. */
  ttlMs: number;
  /** The last fencing token issued for the name: the holder's. */
  fence: string | undefined;
}

const SCAN_STEPS = 200;

export async function listLocks(
  redis: RedisConnection,
  keys: TasukiKeys,
  limit = 200,
): Promise<{ locks: HeldLock[]; more: boolean }> {
  try {
    const match = keys.lock.key({ name: '*' }).replace(/[?[\]]/g, (c) => `\\${c}`);
    const found: string[] = [];
    let cursor = '0';
    let steps = 0;
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      for (const k of batch) if (keys.lock.matches(k) && !keys.lockFence.matches(k)) found.push(k);
    } while (cursor !== '0' && found.length < limit && ++steps < SCAN_STEPS);
    const shown = found.slice(0, limit);
    const pipe = redis.pipeline();
    // Names as their keys carry them (keyPart of a key part is that part): the fence key follows.
    const names = shown.map((k) => /\{lock:(.*)\}$/.exec(k)?.[1] ?? '');
    names.forEach((name, i) =>
      pipe
        .get(shown[i] as string)
        .pttl(shown[i] as string)
        .get(keys.lockFence.key({ name })),
    );
    const r = (await pipe.exec()) ?? [];
    const locks = shown
      .map((key, i) => ({
        name: names[i] as string,
        key,
        owner: (r[i * 3]?.[1] as string | null) ?? '',
        ttlMs: Number(r[i * 3 + 1]?.[1] ?? -2),
        fence: (r[i * 3 + 2]?.[1] as string | null) ?? undefined,
      }))
      .filter((l) => l.ttlMs !== -2);
    return { locks, more: found.length > limit || cursor !== '0' };
  } catch (err) {
    throw redisError('listing locks', err, { wrote: false });
  }
}
