/** Bounding waits on Redis at shutdown: a worker must stop even while Redis does not answer. */

/** What {@link within} rejects with when the time is up. */
export class TimeUp extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not finish within ${ms} ms`);
    this.name = 'TimeUp';
  }
}

/** `promise`, or a rejection with {@link TimeUp} after `ms`, whichever comes first. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeUp(what, ms)), ms);
  });
  return Promise.race([promise, timeUp]).finally(() => clearTimeout(timer));
}
