/** Small timing helpers of the lock: waits, deadlines, jitter and the drift margin. */

export const TIMED_OUT = Symbol('timed out');

/** Margin for clock drift between client and server: 1 % of the TTL plus 2 ms (as Redlock does). */
export function driftMs(ttlMs: number): number {
  return Math.floor(ttlMs * 0.01) + 2;
}

export function jitter(ms: number): number {
  return Math.max(1, Math.round(ms * (0.8 + Math.random() * 0.4)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves `p`, or {@link TIMED_OUT} once `ms` pass (the promise keeps running). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (ms === Infinity) return p;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function isOom(err: unknown): boolean {
  return err instanceof Error && /^OOM\b/.test(err.message);
}
