/**
 * Beat: enqueues the tasks of periodic schedules. Any number of beats may run; a fenced lease makes
 * one of them the active one, the others stand by. The lease only saves work: every tick is claimed
 * and enqueued by one atomic script keyed by (schedule, tick time), so even two beats that both think
 * they lead enqueue each tick once. See docs/beat.md.
 *
 * On RabbitMQ the script writes the tick's task to the queue's outbox on Redis instead of the
 * stream, under a task id the beat chose, and the beat publishes it from there; a beat that dies in
 * between leaves it to the next active beat or any worker, which relay it (src/broker/rabbitmq-outbox.ts).
 */
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { BrokerKind, Publisher } from '../broker/broker.js';
import type { RedisConnection } from '../connection/redis.js';
import type { TasukiKeys } from '../keys/tasuki-keys.js';
import { Lock } from '../lock/lock.js';
import type { Logger } from '../log/logger.js';
import { beatTick, fenceSet, run } from '../scripts/catalogue.js';
import { BackgroundLoop } from '../util/loop.js';
import { encodeMessage } from '../wire/message.js';
import { formatTaskId, publishedLocalId } from '../wire/ids.js';
import type { ScheduleSpec, StoredSchedule } from './definition.js';
import { resolveBeatOptions, type BeatOptions, type ResolvedBeatOptions } from './options.js';
import { Schedules, redisNow, type SchedulesHost } from './schedules.js';
import { decide, nextTick, recordTtlMs } from './timing.js';

export type { BeatOptions } from './options.js';

/** What a beat needs from its app: the schedules' host, and the schedules the app module declares. */
export interface BeatHost extends SchedulesHost {
  /** The schedules declared with `app.schedule()`, checked. */
  declaredSchedules(): readonly ScheduleSpec[];
  /** Where the app's tasks travel: on a broker that is not Redis, ticks go through its outbox. */
  readonly broker: { readonly kind: BrokerKind };
  /** The app's publisher (its outbox, on RabbitMQ). */
  publisher(): Promise<Publisher>;
}

/** How long a queue's beat fence is kept after the last announcement (its key's catalogue TTL). */
const FENCE_TTL_MS = 7 * 24 * 3600_000;

/** The name of the lease (a lock of the lock part: keys `lock.owner` / `lock.fence`). */
export const LEASE_NAME = 'tasuki.beat';

/** One tick a beat claimed, as logged and handed to `onTick`. */
export interface TickEvent {
  schedule: string;
  /** The tick time (ms): from the schedule, not a clock. */
  tick: number;
  /** `enqueued`, or `skipped` (late, misfire policy `skip`). */
  outcome: 'enqueued' | 'skipped';
  /** The task's id ('' when skipped). */
  taskId: string;
  /** Redis time when the round read "now", minus the tick (ms). */
  lateMs: number;
  /** The lease's fencing token. */
  fence: string;
}

/** Hooks into a beat, for tests and benchmarks. */
export interface BeatHooks {
  /** Called for each tick this beat claimed (logged either way). */
  onTick?: (e: TickEvent) => void;
  /** The clock "now" is read from (default: Redis's `TIME`); a test drives a beat through any night with it. */
  now?: (redis: RedisConnection) => Promise<number>;
}

/**
 * A beat. `start()` reconciles the app's declared schedules and starts the loop; `stop()` ends it and
 * hands the lease over at once. `runOnce()` is one round, for tests that drive it step by step.
 */
export class Beat {
  readonly id: string;
  readonly options: Readonly<ResolvedBeatOptions>;
  readonly schedules: Schedules;
  private lease: Lock | undefined;
  private fence: bigint | undefined;
  private lastRound: number | undefined;
  /** Queues this lease announced its token on (beat.fence), so older leases' claims there are refused. */
  private announced = new Set<string>();
  /** When the active beat last relayed its queues' outboxes (RabbitMQ), ms. */
  private relayedAt = -Infinity;
  private readonly log: Logger;
  private readonly keys: TasukiKeys;
  private readonly loop: BackgroundLoop;

  private readonly onTick: ((e: TickEvent) => void) | undefined;
  private readonly now: (redis: RedisConnection) => Promise<number>;

  /**
   * @param host - the app (a `Tasuki` app is one).
   * @param options - see {@link BeatOptions}; invalid options throw an `OptionsError`.
   * @param hooks - see {@link BeatHooks} (tests and benchmarks).
   */
  constructor(
    private readonly host: BeatHost,
    options: BeatOptions = {},
    hooks: BeatHooks = {},
  ) {
    this.onTick = hooks.onTick;
    this.now = hooks.now ?? redisNow;
    const o = resolveBeatOptions(options);
    this.options = Object.freeze(o);
    this.id = o.id ?? `${hostname()}:${process.pid}`;
    this.log = host.log.child({ beat: this.id });
    this.keys = host.keys;
    this.schedules = new Schedules(host, `beat ${this.id}`, this.now);
    this.loop = new RoundLoop(this.log, o.standbyMs, () => this.runOnce());
  }

  /** True while this beat holds the lease (as far as it can tell). */
  get leading(): boolean {
    return this.lease?.held === true;
  }

  /** The lease's fencing token while leading. */
  get token(): bigint | undefined {
    return this.leading ? this.fence : undefined;
  }

  /** Ms since the last round that reached Redis (`Infinity` before the first): the health check reads it. */
  sinceLastRoundMs(): number {
    return this.lastRound === undefined ? Infinity : performance.now() - this.lastRound;
  }

  /** Reconciles the declared schedules, then starts the loop. */
  async start(): Promise<void> {
    await this.reconcile();
    this.log.info({ leaseMs: this.options.leaseMs }, 'beat started; standing by for the lease');
    this.loop.start();
  }

  /** Brings the app module's declared schedules into Redis (see {@link Schedules.reconcile}). */
  async reconcile(): Promise<void> {
    const r = await this.schedules.reconcile(this.host.declaredSchedules());
    if (r.added.length + r.changed.length + r.removed.length) {
      this.log.info(r, 'schedules of the app module reconciled');
    }
  }

  /** Stops the loop and releases the lease, so a standby takes over without waiting for it to expire. */
  async stop(): Promise<void> {
    await this.loop.stop();
    const lease = this.lease;
    this.lease = undefined;
    if (lease?.held) {
      await lease.release().catch(() => undefined);
      this.log.info({ fence: String(this.fence) }, 'lease released');
    }
  }

  /**
   * One round: take the lease if free; while leading, claim every due tick. Resolves the ms until the
   * next round (the next tick, or `refresh`; `standbyInterval` while standing by).
   */
  async runOnce(): Promise<number> {
    const redis = await this.host.redis();
    if (!(await this.holdLease(redis))) {
      this.lastRound = performance.now();
      return this.options.standbyMs;
    }
    const [now, stored] = await Promise.all([this.now(redis), this.schedules.raw()]);
    const active: StoredSchedule[] = [];
    for (const [name, { schedule: s }] of stored) {
      if (!s) this.warnUnreadable(name);
      else if (s.state === 'active' && !s.paused) active.push(s);
    }
    const lasts = await Promise.all(
      active.map((s) => redis.hget(this.keys.tick.key({ queue: s.queue, schedule: s.name }), 't')),
    );
    let wake = now + this.options.refreshMs;
    const due: { s: StoredSchedule; tick: number; fire: boolean; misfired: boolean }[] = [];
    for (const [i, s] of active.entries()) {
      const last = lasts[i];
      const d = decide(s, last ? Number(last) : undefined, now);
      const next = d.kind === 'wait' ? d.next : nextTick(s, Math.max(d.tick, now));
      if (next !== undefined) wake = Math.min(wake, next);
      if (d.kind !== 'wait') {
        due.push({
          s,
          tick: d.tick,
          fire: d.kind === 'fire',
          misfired: d.kind === 'fire' && (d.late || d.missed),
        });
      }
    }
    if (due.length && !this.leading) return 0; // lost the lease during the round: stand by again
    if (!(await this.announce(redis, active))) return 0;
    // One script call per due tick, sent together (auto-pipelined): many schedules due at once cost
    // one round trip, not one each.
    await Promise.all(due.map((t) => this.claim(redis, t.s, t.tick, t.fire, now, t.misfired)));
    await this.relay(active);
    this.lastRound = performance.now();
    return Math.max(1, wake - now);
  }

  private readonly unreadable = new Set<string>();

  /** A stored schedule this version cannot read (written by a newer tasuki?): said once, then skipped. */
  private warnUnreadable(name: string): void {
    if (this.unreadable.has(name)) return;
    this.unreadable.add(name);
    this.log.warn(
      { schedule: name },
      'schedule stored in a form this version cannot read: skipped (upgrade this beat, or remove the schedule)',
    );
  }

  /** Takes the lease if free; true while this beat holds it. */
  private async holdLease(redis: RedisConnection): Promise<boolean> {
    if (this.lease?.held) return true;
    if (this.lease) {
      this.log.warn({ fence: String(this.fence) }, 'lease lost (not renewed in time): standing by');
      await this.lease.release().catch(() => undefined);
      this.lease = undefined;
    }
    const lease = new Lock(redis, this.keys, LEASE_NAME, {
      ttl: this.options.leaseMs,
      autoRenew: true,
      blocking: false,
      maxWait: this.options.leaseMs,
    });
    const token = await lease.tryAcquire();
    if (token === undefined) return false;
    this.lease = lease;
    this.fence = token;
    this.announced = new Set();
    this.log.info(
      { fence: String(token), leaseMs: this.options.leaseMs },
      'lease taken: this beat is active',
    );
    return true;
  }

  /**
   * Writes this lease's token to the fence of each queue it will claim ticks on, before its first
   * claim there: from then on, a claim with an older token on that queue — a paused ex-leader waking
   * up mid-round — is refused by beat_tick.lua, even for a schedule this beat has not ticked yet.
   * False when a newer lease already announced itself (this beat is stale: it stands by).
   */
  private async announce(redis: RedisConnection, schedules: readonly StoredSchedule[]): Promise<boolean> {
    const fresh = [...new Set(schedules.map((s) => s.queue))].filter((q) => !this.announced.has(q));
    const token = String(this.fence);
    const replies = await Promise.all(
      fresh.map((queue) =>
        run(
          redis,
          fenceSet(
            { value: this.keys.beatFence.key({ queue }) },
            { token, value: this.id, ttlMs: FENCE_TTL_MS },
          ),
        ),
      ),
    );
    const newer = replies.find(([ok, stored]) => ok === 0 && stored !== token);
    if (newer) {
      this.log.warn({ fence: token, newerFence: newer[1] }, 'a newer lease announced itself: standing by');
      const lease = this.lease;
      this.lease = undefined;
      await lease?.release().catch(() => undefined);
      return false;
    }
    for (const q of fresh) this.announced.add(q);
    return true;
  }

  /**
   * RabbitMQ: publishes the ticks a beat claimed but did not publish (it died, or RabbitMQ was away)
   * from the outboxes of the schedules' queues — entries older than a lease, once per lease, from
   * the first active round on. Workers relay them too.
   */
  private async relay(schedules: readonly StoredSchedule[]): Promise<void> {
    const lease = this.options.leaseMs;
    if (this.host.broker.kind === 'redis' || performance.now() - this.relayedAt < lease) return;
    this.relayedAt = performance.now();
    try {
      const outbox = (await this.host.publisher()).outbox;
      for (const queue of new Set(schedules.map((s) => s.queue))) {
        const relayed = (await outbox?.relay(queue, lease)) ?? 0;
        if (relayed) this.log.warn({ queue, tasks: relayed }, 'published ticks left in the outbox');
      }
    } catch (err) {
      // The ticks stay in the outbox: the next relay (or a worker's) publishes them.
      this.log.warn({ err }, 'could not relay the outbox to the broker; trying again in a lease');
    }
  }

  /** Claims one tick with beat_tick.lua: enqueued (or skipped) once, whoever else tries. */
  private async claim(
    redis: RedisConnection,
    s: StoredSchedule,
    tick: number,
    fire: boolean,
    now: number,
    misfired: boolean,
  ): Promise<void> {
    // A broker that is not Redis: the task gets its id here, and goes through the queue's outbox.
    const outboxId = this.host.broker.kind === 'redis' ? undefined : publishedLocalId(Date.now());
    const expiry = s.expires ? { expiresAt: tick + s.expires } : {};
    const message = fire
      ? encodeMessage(s.task, JSON.stringify(s.args), outboxId ? { id: outboxId, ...expiry } : expiry)
      : '';
    const fence = String(this.fence);
    const [code, value, outboxEntry] = await run(
      redis,
      beatTick(
        {
          tick: this.keys.tick.key({ queue: s.queue, schedule: s.name }),
          stream: outboxId
            ? this.keys.outbox.key({ queue: s.queue })
            : this.keys.stream.key({ queue: s.queue }),
          fence: this.keys.beatFence.key({ queue: s.queue }),
        },
        {
          tick,
          fence,
          beat: this.id,
          ttlMs: recordTtlMs(s, tick),
          message,
          ...(outboxId ? { outboxId } : {}),
        },
      ),
    );
    if (outboxEntry !== undefined) await this.publish(s.queue, { entry: outboxEntry, id: value, message });
    const base = { schedule: s.name, tick: new Date(tick).toISOString(), lateMs: now - tick, fence };
    if (code === 0) {
      this.log.debug({ ...base, last: Number(value) }, 'tick already claimed');
      return;
    }
    if (code === -1) {
      this.log.warn({ ...base, storedFence: value }, 'a newer lease claimed this schedule: standing by');
      const lease = this.lease;
      this.lease = undefined;
      await lease?.release().catch(() => undefined);
      return;
    }
    const taskId = code === 1 ? formatTaskId(value, s.queue) : '';
    if (code === 1) {
      this.log.info(
        { ...base, task: s.task, taskId, ...(misfired ? { misfired: true } : {}) },
        'tick enqueued',
      );
    } else {
      this.log.warn(base, 'tick skipped: later than its misfire grace (policy skip)');
    }
    this.onTick?.({
      schedule: s.name,
      tick,
      outcome: code === 1 ? 'enqueued' : 'skipped',
      taskId,
      lateMs: now - tick,
      fence,
    });
    if (s.at !== undefined) await this.schedules.markDone(s.name);
  }

  /** Publishes a claimed tick's task from the outbox; left there for a relay if that fails. */
  private async publish(queue: string, entry: { entry: string; id: string; message: string }): Promise<void> {
    try {
      const outbox = (await this.host.publisher()).outbox;
      await outbox?.send(queue, [entry]);
    } catch (err) {
      this.log.warn(
        { err, queue, taskId: formatTaskId(entry.id, queue) },
        'tick claimed, but its task could not be published yet; it waits in the outbox until a beat or worker relays it',
      );
    }
  }
}

/** The beat's timer: the lifecycle every background loop shares, running {@link Beat.runOnce}. */
class RoundLoop extends BackgroundLoop {
  constructor(
    log: Logger,
    retryMs: number,
    private readonly round: () => Promise<number>,
  ) {
    super(log, 'beat round');
    this.retryMs = retryMs;
  }

  runOnce(): Promise<number> {
    return this.round();
  }
}
