/**
 * Waiting on what Redis did instead of sleeping: keyspace events of one key (each renewal of a lock
 * is a PEXPIRE, an `expire` event) and the commands Redis ran (MONITOR), so lock tests assert on
 * events and not on how much time passed (they must pass on a loaded machine).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TestRedis } from '../../src/testing/index.js';

/** Counts of something seen so far, and promises that resolve once a count is reached. */
class Counter<K> {
  readonly #counts = new Map<K, number>();
  readonly #waiters: { key: K; n: number; resolve: () => void }[] = [];

  add(key: K): void {
    this.#counts.set(key, this.count(key) + 1);
    for (const w of [...this.#waiters]) {
      if (this.count(w.key) >= w.n) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  count(key: K): number {
    return this.#counts.get(key) ?? 0;
  }

  reach(key: K, n: number): Promise<void> {
    if (this.count(key) >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ key, n, resolve }));
  }
}

export interface KeyEvents {
  /** How many times `event` (`expire`, `del`, `expired`, ...) happened to the key since the watch began. */
  count(event: string): number;
  /** Resolves once `event` has happened `n` times in all since the watch began. */
  reach(event: string, n: number): Promise<void>;
  close(): void;
}

/**
 * Watches keyspace events of `key` (db 0). Turns on `notify-keyspace-events Kgx` on the server:
 * generic events (`expire` for each PEXPIRE, `del`) and `expired`.
 */
export async function watchKey(server: TestRedis, key: string): Promise<KeyEvents> {
  const sub = server.client();
  await sub.config('SET', 'notify-keyspace-events', 'Kgx');
  const channel = `__keyspace@0__:${key}`;
  const counter = new Counter<string>();
  sub.on('message', (ch: string, event: string) => {
    if (ch === channel) counter.add(event);
  });
  await sub.subscribe(channel);
  return {
    count: (event) => counter.count(event),
    reach: (event, n) => counter.reach(event, n),
    close: () => sub.disconnect(),
  };
}

export interface Commands {
  /** Commands seen so far that matched. */
  count(): number;
  /** Resolves once `n` matching commands have been seen. */
  reach(n: number): Promise<void>;
  /**
   * Resolves once every command Redis ran before this call has been seen, so {@link count} is final
   * for them: sends a unique ECHO and waits for it (MONITOR shows commands in the order they ran).
   */
  caughtUp(): Promise<void>;
  close(): void;
}

/** Watches the commands Redis runs (MONITOR) and counts those for which `match(args)` is true. */
export async function watchCommands(
  server: TestRedis,
  match: (args: readonly string[]) => boolean,
): Promise<Commands> {
  const monitor: Redis = await server.client().monitor();
  const probe = server.client();
  const counter = new Counter<string>();
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1]?.startsWith('tasuki-test-marker:')) {
      counter.add(args[1]);
    } else if (match(args)) counter.add('match');
  });
  return {
    count: () => counter.count('match'),
    reach: (n) => counter.reach('match', n),
    caughtUp: async () => {
      const marker = `tasuki-test-marker:${randomBytes(6).toString('hex')}`;
      await probe.echo(marker);
      await counter.reach(marker, 1);
    },
    close: () => {
      monitor.disconnect();
      probe.disconnect();
    },
  };
}

/** A lock acquisition script call (`lock_acquire` is the only script that is passed the fence key). */
export function isAcquireOf(fenceKey: string): (args: readonly string[]) => boolean {
  return (args) => /^eval(sha)?$/i.test(args[0] ?? '') && args.includes(fenceKey);
}

/** Keeps track of whether `promise` has settled (resolved or rejected) yet. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise, settled: () => done };
}
