/** Cron expressions: croner jobs for computing ticks, and the checks a schedule's cron goes through. */
import { Cron } from 'croner';
import type { FieldIssue } from '../errors.js';
import { quote } from '../util/options.js';

/** A croner job for a cron schedule (never started: only used to compute times). */
export function cronOf(pattern: string, timezone: string | undefined): Cron {
  return new Cron(pattern, { paused: true, mode: '5-or-6-parts', ...(timezone ? { timezone } : {}) });
}

/**
 * Checks a cron expression (5 or 6 fields, one croner accepts) and its time zone (IANA); pushes an
 * issue naming what is wrong, or resolves them as stored.
 */
export function checkCron(
  cron: unknown,
  timezone: unknown,
  issues: FieldIssue[],
): { cron: string; timezone?: string } | undefined {
  if (typeof cron !== 'string') {
    issues.push({ path: 'cron', message: `${quote(cron)} is not a cron expression (a string)` });
    return undefined;
  }
  if (timezone !== undefined && !validTimezone(timezone)) {
    issues.push({
      path: 'timezone',
      message: `${quote(timezone)} is not an IANA time zone such as "Europe/Berlin"`,
    });
    return undefined;
  }
  const tz = timezone as string | undefined;
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    issues.push({
      path: 'cron',
      message: `${quote(cron)} has ${fields} fields; use 5 (minute hour day month weekday) or 6 (seconds first)`,
    });
    return undefined;
  }
  try {
    if (cronOf(cron, tz).nextRun(new Date(0)) === null) throw new Error('it never fires');
  } catch (err) {
    issues.push({
      path: 'cron',
      message: `${quote(cron)} is not a valid cron expression: ${(err as Error).message}`,
    });
    return undefined;
  }
  return { cron: cron.trim(), ...(tz !== undefined ? { timezone: tz } : {}) };
}

function validTimezone(tz: unknown): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
