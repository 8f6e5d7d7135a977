/**
 * The memory guard: admission control before Redis runs out of memory. A producer samples
 * `used_memory` against `maxmemory` (INFO memory) about once a second in the background and keeps the
 * answer in a flag, so an enqueue reads a boolean instead of asking Redis. Above the high watermark
 * an enqueue waits (up to `maxWait`) for the next sample that shows headroom, then fails with
 * {@link MemoryFullError}: the producer learns Redis is full before Redis refuses writes, and the
 * workers, whose writes free memory, keep the room they need to drain (see docs/memory.md).
 */
import { isCluster, masters, type RedisConnection } from '../connection/redis.js';
import { MemoryFullError, type MemoryReading } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** The guard's settings, resolved (see the app option `memoryGuard`). */
export interface MemoryGuardSettings {
  /** Fraction of maxmemory above which enqueues wait, then fail (0 < w <= 1). */
  highWatermark: number;
  /** Longest an enqueue waits for headroom, ms. */
  maxWaitMs: number;
  /** Time between two samples, ms. */
  sampleIntervalMs: number;
}

/** While an enqueue waits for headroom, samples come this often (ms), so it resumes soon after. */
const WAITING_SAMPLE_MS = 100;

/** What a waiting task costs Redis beyond its message's bytes (stream entry, ids): see docs/memory.md. */
export const ENTRY_OVERHEAD_BYTES = 64;

/** What INFO memory says about the guard's inputs. */
export interface MemoryInfo extends MemoryReading {
  /** `maxmemory_policy`, when INFO reports it. */
  policy: string | undefined;
}

/**
 * INFO memory of the one server, or on a cluster of the master nearest its maxmemory: a shard
 * refuses writes when it is full, whatever the others have left.
 */
async function fullestNode(redis: RedisConnection): Promise<MemoryInfo> {
  if (!isCluster(redis)) return parseMemoryInfo(await redis.info('memory'));
  const infos = (await Promise.all(masters(redis).map((n) => n.info('memory')))).map(parseMemoryInfo);
  const fill = (i: MemoryInfo): number => (i.max > 0 ? i.used / i.max : 0);
  return infos.reduce((a, b) => (fill(b) > fill(a) ? b : a));
}

/** Reads `used_memory`, `maxmemory` and `maxmemory_policy` from an INFO memory reply. */
export function parseMemoryInfo(info: string): MemoryInfo {
  const field = (name: string): string | undefined =>
    new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1]?.trim();
  return {
    used: Number(field('used_memory') ?? 0),
    max: Number(field('maxmemory') ?? 0),
    policy: field('maxmemory_policy'),
  };
}

/**
 * Warns when Redis may evict keys: with any `maxmemory-policy` but `noeviction`, Redis deletes keys
 * to make room at maxmemory — queue streams, delayed sets, results — and tasks are lost without an
 * error. Reads the policy from INFO memory, else CONFIG GET; when neither is allowed (managed
 * services such as ElastiCache restrict CONFIG), says so once and goes on. Never throws.
 */
export async function checkEvictionPolicy(
  redis: RedisConnection,
  log: Logger,
  known?: string,
): Promise<void> {
  let policy = known;
  if (policy === undefined) {
    try {
      const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
      policy = reply[1];
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        'cannot read maxmemory-policy (CONFIG GET is not allowed here, as on ElastiCache); make sure it is ' +
          'noeviction, or Redis may evict queued tasks at maxmemory (see docs/memory.md)',
      );
      return;
    }
  }
  if (policy !== undefined && policy !== 'noeviction') {
    log.warn(
      { maxmemoryPolicy: policy },
      `Redis maxmemory-policy is "${policy}", not "noeviction": at maxmemory Redis will evict keys, and ` +
        'queued tasks, delayed tasks and results are lost without an error. Set maxmemory-policy noeviction ' +
        '(keep caches on another Redis, see docs/memory.md)',
    );
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The producer side of the guard: one per app. {@link start} takes the first sample (and checks the
 * eviction policy) on the app's first connection; {@link admit} is what an enqueue calls.
 */
export class MemoryGuard {
  private redis: RedisConnection | undefined;
  private reading: MemoryReading | undefined;
  /** The cached answer an enqueue reads: used_memory above the watermark at the last sample. */
  private full = false;
  /**
   * Bytes this app enqueued since the last sample, which its reading cannot include yet: a producer
   * writing 10 KB tasks as fast as it can fills 60 MB between two samples a second apart.
   */
  private written = 0;
  /** used_memory at which enqueues are held: the watermark of maxmemory (Infinity: no maxmemory). */
  private limit = Infinity;
  /** INFO refused or unparseable: the guard stays off (said once). */
  private disabled = false;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;
  private stopped = false;
  private readonly waiters = new Set<Waiter>();

  constructor(
    private readonly settings: MemoryGuardSettings | false,
    private readonly log: Logger,
  ) {}

  /** The last reading (`undefined` before the first sample, or with the guard off). */
  get lastReading(): MemoryReading | undefined {
    return this.reading;
  }

  /** Enqueues waiting for headroom now. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** True when the last sample saw used_memory above the high watermark. */
  get isFull(): boolean {
    return this.full;
  }

  /**
   * Begins guarding on a connection: samples once (so the first enqueue already knows), warns about
   * an evicting maxmemory-policy, then samples in the background. Never throws.
   */
  async start(redis: RedisConnection): Promise<void> {
    if (this.redis || this.stopped) return;
    this.redis = redis;
    const info = await this.sample();
    await checkEvictionPolicy(redis, this.log, info?.policy);
    if (this.settings !== false && !this.disabled) this.schedule(this.settings.sampleIntervalMs);
  }

  /**
   * Admission of one enqueue of `task` (`bulk`: an enqueueMany): `undefined` (go on at once, no
   * await needed) while there is headroom or the guard is off; else a promise that resolves when a
   * sample shows headroom, or rejects with {@link MemoryFullError} after `maxWait`. `bytes` is what
   * this enqueue will add to Redis (see {@link ENTRY_OVERHEAD_BYTES}): added to the last reading, it
   * holds enqueues before the next sample when they would cross the watermark meanwhile.
   */
  admit(task: string, bulk = false, bytes = 0): Promise<void> | undefined {
    if (!this.full) {
      this.written += bytes;
      if (this.reading === undefined || this.reading.used + this.written < this.limit) return undefined;
      // An estimate: the next sample (taken soon, since someone waits) says for sure.
      this.full = true;
    }
    if (this.settings === false) return undefined;
    const { maxWaitMs, highWatermark } = this.settings;
    const what = `${bulk ? 'bulk enqueue' : 'enqueue'} of task "${task}"`;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new MemoryFullError(what, {
              reading: this.reading,
              watermark: highWatermark,
              waitedMs: maxWaitMs,
            }),
          );
        }, maxWaitMs),
      };
      this.waiters.add(waiter);
      // Sample sooner while someone waits, so headroom is seen soon after it comes.
      this.schedule(WAITING_SAMPLE_MS);
    });
  }

  /** Takes one sample now (tests drive the guard with it); resolves what INFO said, if anything. */
  async sample(): Promise<MemoryInfo | undefined> {
    const redis = this.redis;
    if (!redis || this.disabled) return undefined;
    let info: MemoryInfo;
    try {
      info = await fullestNode(redis);
    } catch (err) {
      if (/NOPERM|unknown command|not allowed/i.test((err as Error).message)) {
        this.disabled = true;
        this.log.warn(
          { err: (err as Error).message },
          'memory guard off: INFO memory is not allowed for this Redis user; enqueues are not held back ' +
            'before Redis is full (Redis OOM refusals still become E_MEMORY_FULL)',
        );
      }
      // Redis away: keep the last answer; the enqueue itself will say what is wrong.
      return undefined;
    }
    if (!Number.isFinite(info.used) || !Number.isFinite(info.max)) return undefined;
    this.reading = { used: info.used, max: info.max };
    this.written = 0;
    this.limit =
      this.settings !== false && info.max > 0
        ? info.max * this.settings.highWatermark
        : Number.POSITIVE_INFINITY;
    // No maxmemory: Redis never refuses for memory (the machine may; that is not ours to see).
    this.full =
      this.settings !== false && info.max > 0 && info.used >= info.max * this.settings.highWatermark;
    if (!this.full) this.admitWaiters();
    return info;
  }

  private admitWaiters(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters.clear();
  }

  private schedule(ms: number): void {
    if (this.stopped || this.settings === false) return;
    if (this.sampling) return; // the round in progress schedules the next one
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sampling = this.sample().then(
        () => undefined,
        () => undefined,
      );
      void this.sampling.finally(() => {
        this.sampling = undefined;
        if (this.settings === false || this.disabled) return;
        this.schedule(this.waiters.size > 0 ? WAITING_SAMPLE_MS : this.settings.sampleIntervalMs);
      });
    }, ms);
    // The guard never keeps a process alive.
    this.timer.unref();
  }

  /** Stops sampling; enqueues waiting for headroom are let through to meet Redis (closed apps reject anyway). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.admitWaiters();
  }
}
