/** A beat's options: what a user may set, the defaults, and their validation (one schema). */
import { z } from 'zod';
import type { Duration } from '../util/duration.js';
import { duration, parseOptions } from '../util/options.js';

/** Options of a {@link Beat}. Every field is optional; defaults are listed. */
export interface BeatOptions {
  /**
   * TTL of the lease that makes one beat the active one (default `10s`; renewed every third of it).
   * A standby takes over at most `lease + standbyInterval` after the active beat dies or is cut off.
   */
  lease?: Duration;
  /** How often a standby tries to take the lease (default `1s`). */
  standbyInterval?: Duration;
  /**
   * Longest wait between two rounds of the active beat (default `1s`): how soon a schedule added,
   * changed or resumed at run time is seen.
   */
  refresh?: Duration;
  /** This beat's id in logs and tick records (default `<hostname>:<pid>`). */
  id?: string;
}

/** Beat options after validation, in ms. */
export interface ResolvedBeatOptions {
  leaseMs: number;
  standbyMs: number;
  refreshMs: number;
  id: string | undefined;
}

const schema = z
  .object({
    lease: z
      .union([z.number(), z.string()])
      .pipe(duration({ min: 300 }))
      .default(10_000),
    standbyInterval: duration({ min: 10 }).default(1000),
    refresh: duration({ min: 10 }).default(1000),
    id: z.string().min(1).max(200).optional(),
  })
  .strict();

/** Checks beat options and applies defaults; throws one `OptionsError` naming every bad field. */
export function resolveBeatOptions(o: BeatOptions = {}): ResolvedBeatOptions {
  const p = parseOptions(schema, o, 'beat options', 'E_OPTIONS');
  return { leaseMs: Math.round(p.lease), standbyMs: p.standbyInterval, refreshMs: p.refresh, id: p.id };
}
