/**
 * The schedules in Redis: one hash every beat replica, the CLI and the dashboard read. Changes go
 * through a compare-and-set script, so a run-time change and a beat reconciling the app's declared
 * schedules never overwrite each other unseen.
 */
import type { Redis } from 'ioredis';
import { TasukiError, redisError } from '../errors.js';
import { run, scheduleCas } from '../scripts/catalogue.js';
import type { TaskHandle } from '../task/task.js';
import { quote } from '../util/options.js';
import {
  checkSchedule,
  parseStored,
  specHash,
  type ScheduleDefinition,
  type ScheduleHost,
  type ScheduleSpec,
  type StoredSchedule,
} from './definition.js';
import { nextTick } from './timing.js';

/** What the schedules need from the app: its checks, and its Redis. */
export interface SchedulesHost extends ScheduleHost {
  redis(): Promise<Redis>;
}

/** A schedule as listed: its stored form, plus its last claimed tick and its next one. */
export interface ScheduleInfo extends StoredSchedule {
  /** The last tick claimed (ms), if its record is still there. */
  lastTick: number | undefined;
  /** The task id the last tick enqueued ('' when it was skipped). */
  lastTaskId: string | undefined;
  /** The next tick (ms), `undefined` when paused, done or there is none. */
  nextTick: number | undefined;
}

/** Redis's clock in ms: the one clock beat reads "now" from (see docs/beat.md, clock source). */
export async function redisNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

const CAS_ATTEMPTS = 20;

/** The app's schedules in Redis: list, add, remove, pause, resume, run now. */
export class Schedules {
  constructor(
    private readonly host: SchedulesHost,
    /** Who writes (kept in each schedule: `updatedBy`). */
    private readonly by = `pid ${process.pid}`,
    /** The clock of `since` and `updatedAt`: Redis's TIME unless a test gives another. */
    private readonly now: (redis: Redis) => Promise<number> = redisNow,
  ) {}

  private get key(): string {
    return this.host.keys.schedules.key({});
  }

  /** Every stored schedule with its raw value (tombstones and done one-offs included). */
  async raw(): Promise<Map<string, { raw: string; schedule: StoredSchedule | undefined }>> {
    const redis = await this.host.redis();
    const all = await redis.hgetall(this.key);
    const out = new Map<string, { raw: string; schedule: StoredSchedule | undefined }>();
    for (const [name, raw] of Object.entries(all)) out.set(name, { raw, schedule: parseStored(raw) });
    return out;
  }

  /** The schedules, with their last and next ticks; `all` includes removed ones (tombstones). */
  async list(opts: { all?: boolean } = {}): Promise<ScheduleInfo[]> {
    const redis = await this.host.redis();
    const [now, stored] = await Promise.all([this.now(redis), this.raw()]);
    const schedules = [...stored.values()]
      .flatMap((s) => (s.schedule ? [s.schedule] : []))
      .filter((s) => opts.all || s.state !== 'removed')
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    const records = await Promise.all(
      schedules.map((s) =>
        redis.hmget(this.host.keys.tick.key({ queue: s.queue, schedule: s.name }), 't', 'id'),
      ),
    );
    return schedules.map((s, i) => {
      const [t, id] = records[i] as (string | null)[];
      const last = t ? Number(t) : undefined;
      const after = Math.max(last ?? -Infinity, s.since, now);
      return {
        ...s,
        lastTick: last,
        lastTaskId: id ?? undefined,
        nextTick: s.paused || s.state !== 'active' ? undefined : nextTick(s, after),
      };
    });
  }

  /** One schedule (`undefined` when there is none by that name, or it was removed). */
  async get(name: string): Promise<ScheduleInfo | undefined> {
    return (await this.list()).find((s) => s.name === name);
  }

  /**
   * Adds a schedule, or replaces the one of that name, at run time. Checked like `app.schedule()`.
   * Its ticks start after now: a replaced schedule does not fire the ticks it would have had before.
   */
  async add(def: ScheduleDefinition): Promise<StoredSchedule> {
    const spec = await checkSchedule(this.host, def);
    return this.change(
      spec.name,
      (current, now) => ({
        ...withoutTiming(current),
        ...spec,
        origin: current?.origin ?? 'api',
        ...(current?.declared !== undefined ? { declared: current.declared } : {}),
        state: 'active',
        since: now,
        updatedAt: now,
        updatedBy: this.by,
      }),
      { missingOk: true },
    );
  }

  /**
   * Removes a schedule. One the app module declares stays removed (a tombstone), so the next beat
   * start does not bring it back unless its declaration changed. Resolves false when there was none.
   */
  async remove(name: string): Promise<boolean> {
    let found = true;
    await this.change(
      name,
      (current, now) => {
        if (!current || current.state === 'removed') {
          found = false;
          return current;
        }
        if (current.origin === 'api') return undefined;
        return { ...current, state: 'removed', updatedAt: now, updatedBy: this.by };
      },
      { missingOk: true },
    );
    return found;
  }

  /** Pauses a schedule: no tick fires until it is resumed. */
  async pause(name: string): Promise<StoredSchedule> {
    return this.change(name, (s, now) => ({
      ...this.existing(name, s),
      paused: true,
      updatedAt: now,
      updatedBy: this.by,
    }));
  }

  /** Resumes a schedule; ticks that fell while it was paused do not fire. */
  async resume(name: string): Promise<StoredSchedule> {
    return this.change(name, (s, now) => ({
      ...this.existing(name, s),
      paused: false,
      since: now,
      updatedAt: now,
      updatedBy: this.by,
    }));
  }

  /** Enqueues the schedule's task now, outside its timing (its ticks are not affected). */
  async run(name: string): Promise<TaskHandle> {
    const s = (await this.raw()).get(name)?.schedule;
    if (!s || s.state === 'removed') throw notFound(name);
    const task = this.host.getTaskDefinition(s.task);
    if (!task)
      throw new TasukiError(
        'E_UNKNOWN_TASK',
        `schedule ${quote(name)} names task ${quote(s.task)}, which this app does not define`,
      );
    return task.enqueue(s.args, { queue: s.queue, ...(s.expires ? { expires: s.expires } : {}) });
  }

  /**
   * Brings the app's declared schedules into Redis (every beat does it at start). A schedule whose
   * declaration is unchanged since it was last reconciled is left as it is: run-time changes (pause,
   * a new timing, removal) win. A new or changed declaration wins — a deploy is a decision too — but
   * a paused schedule stays paused. Declared schedules the app no longer declares are removed.
   */
  async reconcile(
    declared: readonly ScheduleSpec[],
  ): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const out = { added: [] as string[], changed: [] as string[], removed: [] as string[] };
    const names = new Set(declared.map((d) => d.name));
    for (const spec of declared) {
      const hash = specHash(spec);
      await this.change(
        spec.name,
        (current, now) => {
          if (current && current.origin === 'app' && current.declared === hash) return current;
          (current ? out.changed : out.added).push(spec.name);
          return {
            ...spec,
            paused: spec.paused || (current?.state === 'active' && current.paused),
            origin: 'app',
            declared: hash,
            state: 'active',
            since: now,
            updatedAt: now,
            updatedBy: this.by,
          };
        },
        { missingOk: true },
      );
    }
    for (const [name, { schedule }] of await this.raw()) {
      if (names.has(name) || schedule?.origin !== 'app' || schedule.state === 'removed') continue;
      await this.change(
        name,
        (current, now) => {
          if (current?.origin !== 'app' || current.state === 'removed') return current;
          out.removed.push(name);
          return { ...current, state: 'removed', updatedAt: now, updatedBy: this.by };
        },
        { missingOk: true },
      );
    }
    return out;
  }

  /** Marks a one-off schedule done after its tick fired (best effort: the tick record guards anyway). */
  async markDone(name: string): Promise<void> {
    await this.change(
      name,
      (s, now) =>
        s && s.at !== undefined && s.state === 'active'
          ? { ...s, state: 'done', updatedAt: now, updatedBy: this.by }
          : s,
      { missingOk: true },
    );
  }

  private existing(name: string, s: StoredSchedule | undefined): StoredSchedule {
    if (!s || s.state === 'removed') throw notFound(name);
    return s;
  }

  /**
   * Reads a schedule, computes its new value (`undefined` deletes it; the same object leaves it) and
   * writes it if nobody changed it meanwhile; else reads again.
   */
  private async change<T extends StoredSchedule | undefined>(
    name: string,
    next: (current: StoredSchedule | undefined, now: number) => T,
    opts: { missingOk?: boolean } = {},
  ): Promise<T> {
    const redis = await this.host.redis();
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      let raw: string | null;
      let now: number;
      try {
        [raw, now] = await Promise.all([redis.hget(this.key, name), this.now(redis)]);
      } catch (err) {
        throw redisError(`reading schedule ${quote(name)}`, err);
      }
      const current = raw === null ? undefined : parseStored(raw);
      if (raw !== null && !current) {
        throw new TasukiError(
          'E_CONFIG',
          `schedule ${quote(name)} is stored in a form this version cannot read; remove it with \`tasuki schedule remove\``,
        );
      }
      if (!current && !opts.missingOk) throw notFound(name);
      const value = next(current, now);
      if (value === current) return value;
      const ok = await run(
        redis,
        scheduleCas(
          { schedules: this.key },
          { name, expected: raw ?? '', value: value ? JSON.stringify(value) : '' },
        ),
      );
      if (ok === 1) return value;
    }
    throw new TasukiError(
      'E_REDIS',
      `schedule ${quote(name)} kept changing under this write (${CAS_ATTEMPTS} attempts); try again`,
    );
  }
}

function withoutTiming(s: StoredSchedule | undefined): Partial<StoredSchedule> {
  if (!s) return {};
  const { cron: _c, timezone: _t, every: _e, at: _a, expires: _x, ...rest } = s;
  return rest;
}

function notFound(name: string): TasukiError {
  return new TasukiError(
    'E_NOT_FOUND',
    `no schedule named ${quote(name)}; \`tasuki schedule list\` shows the schedules`,
  );
}
