/**
 * When a schedule's ticks fall, and what one round of beat does about them. Pure functions of the
 * schedule, its last claimed tick and "now": the tick times come from the schedule alone, so every
 * replica computes the same ticks, and the tick record in Redis decides which of them fired.
 */
import type { Cron } from 'croner';
import { cronOf } from './cron.js';
import type { StoredSchedule } from './definition.js';

type Timing = Pick<StoredSchedule, 'cron' | 'timezone' | 'every' | 'at'>;

const crons = new Map<string, Cron>();

function cron(s: Timing): Cron {
  const id = `${s.timezone ?? ''} ${s.cron ?? ''}`;
  let job = crons.get(id);
  if (!job) {
    if (crons.size > 1000) crons.clear();
    job = cronOf(s.cron as string, s.timezone);
    crons.set(id, job);
  }
  return job;
}

/** The first tick strictly after `after` (ms), or `undefined` when there is none. */
export function nextTick(s: Timing, after: number): number | undefined {
  if (s.every !== undefined) return (Math.floor(after / s.every) + 1) * s.every;
  if (s.at !== undefined) return s.at > after ? s.at : undefined;
  return cron(s).nextRun(new Date(after))?.getTime();
}

/** The latest tick `t` with `after < t <= now`, or `undefined` when none is due. */
export function latestTick(s: Timing, after: number, now: number): number | undefined {
  if (now <= after) return undefined;
  let t: number | undefined;
  if (s.every !== undefined) t = Math.floor(now / s.every) * s.every;
  else if (s.at !== undefined) t = s.at;
  else
    t = cron(s)
      .previousRuns(1, new Date(now + 1))[0]
      ?.getTime();
  return t !== undefined && t > after && t <= now ? t : undefined;
}

/** What a round does with one schedule. */
export type Decision =
  /** Nothing is due; the next tick is at `next` (ms), if any. */
  | { kind: 'wait'; next: number | undefined }
  /**
   * Enqueue tick `tick`. `late`: it is past the misfire grace (policy `once`); `missed`: earlier
   * ticks since the last one were not enqueued (they are folded into this one).
   */
  | { kind: 'fire'; tick: number; late: boolean; missed: boolean }
  /** Claim tick `tick` without enqueuing: it is late and the policy is `skip`. */
  | { kind: 'skip'; tick: number };

/**
 * One schedule in one round. Ticks after `max(last claimed tick, since)` and at or before `now` are
 * due; only the latest of them is considered — a round never enqueues more than one tick of a
 * schedule, so downtime never becomes a burst.
 */
export function decide(
  s: Timing & Pick<StoredSchedule, 'since' | 'grace' | 'misfire'>,
  last: number | undefined,
  now: number,
): Decision {
  const anchor = Math.max(last ?? -Infinity, s.since);
  const tick = latestTick(s, anchor, now);
  if (tick === undefined) return { kind: 'wait', next: nextTick(s, Math.max(anchor, now)) };
  const late = now - tick > s.grace;
  if (late && s.misfire === 'skip') return { kind: 'skip', tick };
  const first = nextTick(s, anchor);
  return { kind: 'fire', tick, late, missed: first !== undefined && first < tick };
}

/**
 * How long the tick record of a schedule is kept: a week, or two periods of the schedule when that is
 * longer, so the record outlives any tick a beat could still consider (see docs/beat.md).
 */
export function recordTtlMs(s: Timing, tick: number): number {
  const next = nextTick(s, tick);
  const period = next === undefined ? 0 : next - tick;
  return Math.max(7 * 24 * 3600_000, 2 * period);
}
