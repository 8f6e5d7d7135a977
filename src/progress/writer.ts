/**
 * Writing progress from a worker: at most one write per task every {@link PROGRESS_INTERVAL_MS}
 * (the first report at once, later ones coalesced into one trailing write), and the last value
 * always written when the attempt ends. A task that never reports progress costs nothing: no
 * tracker, no timer, no Redis call.
 */
import type { RedisConnection } from '../connection/redis.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import type { Logger } from '../log/logger.js';
import { encodeProgress } from './value.js';

/** Shortest time between two progress writes of one task, ms. */
export const PROGRESS_INTERVAL_MS = 250;

/** Entries kept per task (XADD MAXLEN): followers that fall further behind miss the oldest. */
export const PROGRESS_MAX_ENTRIES = 100;

/** The progress of one attempt. */
export interface ProgressTracker {
  /** Checks the value (throws `E_PROGRESS`), writes it now or at the end of the interval. */
  report(value: unknown): void;
  /** The attempt ended: writes the last value with the end mark (`record` false: drop it). */
  end(record: boolean): void;
}

/** Where a worker writes progress: its command connection and the app's keys. */
export class ProgressWriter {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: TasukiKeys,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly intervalMs = PROGRESS_INTERVAL_MS,
  ) {}

  /** A tracker for one attempt (made on its first report). */
  tracker(queue: string, local: string, attempt: number): ProgressTracker {
    return new Tracker(this, this.keys.progress.key({ queue, task: local }), attempt, this.intervalMs);
  }

  /** One entry, capped and with the TTL, in one MULTI; best effort (a lost update is only late). */
  write(key: string, fields: string[]): void {
    this.redis
      .multi()
      .xadd(key, 'MAXLEN', PROGRESS_MAX_ENTRIES, '*', ...fields)
      .pexpire(key, this.ttlMs)
      .exec()
      .catch((err: unknown) => this.log.debug({ err, key }, 'could not write a progress update'));
  }
}

class Tracker implements ProgressTracker {
  private lastWriteAt = 0;
  /** JSON of the last value written, and of one waiting for the interval to pass. */
  private written: string | undefined;
  private pending: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly writer: ProgressWriter,
    private readonly key: string,
    private readonly attempt: number,
    private readonly intervalMs: number,
  ) {}

  report(value: unknown): void {
    const json = encodeProgress(value);
    if (this.ended) return;
    const wait = this.lastWriteAt + this.intervalMs - Date.now();
    if (wait <= 0 && this.timer === undefined) {
      this.flush(json);
      return;
    }
    this.pending = json;
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        if (this.pending !== undefined) this.flush(this.pending);
      },
      Math.max(0, wait),
    );
  }

  end(record: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (!record) return;
    const json = this.pending ?? this.written;
    if (json === undefined) return;
    const fields = ['v', json, 'n', String(this.attempt), 'e', '1'];
    if (this.pending === undefined) fields.push('r', '1');
    this.writer.write(this.key, fields);
  }

  private flush(json: string): void {
    this.pending = undefined;
    this.written = json;
    this.lastWriteAt = Date.now();
    this.writer.write(this.key, ['v', json, 'n', String(this.attempt)]);
  }
}
