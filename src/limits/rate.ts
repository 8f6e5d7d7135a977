/**
 * Rate limits as a task definition states them (`'100/s'`, `{ rate: '10/m', key: (a) => a.customer }`)
 * and as the rate-limit script takes them: an emission interval and a burst tolerance per limit
 * (GCRA, see docs/rate-limits.md). Parsed once when the task is defined, so a worker pays nothing
 * per task for a task without limits.
 */
import { TasukiError } from '../errors.js';
import { quote } from '../util/quote.js';

/** A rate: `<count>/<unit>` with unit `s`, `m`, `h` or `d` (optionally `<count>/<n><unit>`, e.g. `5/10s`). */
export type Rate = `${number}/${string}`;

/**
 * One rate limit of a task: a rate for the task across all workers, or with `key`, a rate for each
 * value of the key (e.g. per customer) within the task.
 */
export type RateLimit<Args = never> =
  | Rate
  | {
      /** `'100/s'`, `'10/m'`, `'5/10s'`... */
      rate: Rate;
      /**
       * How many may start at once after a quiet spell (default 1: starts are spaced evenly, never
       * more than the rate in any window). A burst of b lets b start at once, then the rate.
       */
      burst?: number;
      /**
       * A key from the (validated) arguments: each value has its own limit. Long values are hashed
       * in the key name (the registry bounds every key part), so any string is safe here.
       */
      key?: (args: Args) => string | number;
    };

/** One limit, ready for the script. */
export interface CompiledRateLimit {
  /** As written, for messages and docs. */
  rate: string;
  /** Time between two starts, µs. */
  intervalUs: number;
  /** Burst tolerance: (burst − 1) × interval, µs. */
  toleranceUs: number;
  key: ((args: unknown) => string | number) | undefined;
}

export type CompiledRateLimits = readonly CompiledRateLimit[];

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RATE = /^\s*(\d+)\s*\/\s*(\d*)\s*(s|m|h|d)\s*$/;

/** Parses `'10/s'` into a count and a period; `undefined` when it is not a rate. */
export function parseRate(rate: unknown): { count: number; periodMs: number } | undefined {
  if (typeof rate !== 'string') return undefined;
  const m = RATE.exec(rate);
  if (!m) return undefined;
  const count = Number(m[1]);
  const periodMs = (m[2] ? Number(m[2]) : 1) * (UNIT_MS[m[3] as string] as number);
  if (!(count >= 1) || !(periodMs >= 1)) return undefined;
  return { count, periodMs };
}

/** What is wrong with a `rateLimit` option, or `undefined` when it is fine (for the definition check). */
export function rateLimitProblem(value: unknown): string | undefined {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length === 0)
    return 'must be a rate such as "10/s", an object { rate, burst?, key? }, or a list of them';
  for (const [i, item] of list.entries()) {
    const at = Array.isArray(value) ? `[${i}] ` : '';
    const obj = typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : undefined;
    const rate = obj ? obj.rate : item;
    if (!parseRate(rate)) {
      return `${at}${quote(rate)} is not a rate: write "<count>/<unit>" with unit s, m, h or d, e.g. "100/s", "10/m", "5/10s"`;
    }
    if (obj) {
      const unknown = Object.keys(obj).filter((k) => !['rate', 'burst', 'key'].includes(k));
      if (unknown.length) return `${at}unknown field ${quote(unknown[0])} (rate, burst, key)`;
      if (obj.burst !== undefined && !(Number.isInteger(obj.burst) && (obj.burst as number) >= 1)) {
        return `${at}burst ${quote(obj.burst)} is not an integer >= 1`;
      }
      if (obj.key !== undefined && typeof obj.key !== 'function') {
        return `${at}key must be a function of the arguments, e.g. (args) => args.customerId`;
      }
    }
  }
  return undefined;
}

/** Compiles a checked `rateLimit` option; `undefined` when there is none. */
export function compileRateLimits(
  value: RateLimit<never> | readonly RateLimit<never>[] | undefined,
): CompiledRateLimits | undefined {
  if (value === undefined) return undefined;
  const list = (Array.isArray(value) ? value : [value]) as RateLimit<never>[];
  return list.map((item) => {
    const spec = typeof item === 'string' ? { rate: item } : item;
    const parsed = parseRate(spec.rate);
    if (!parsed) throw new TasukiError('E_CONFIG', `rateLimit: ${rateLimitProblem(value) ?? 'invalid'}`);
    const intervalUs = Math.max(1, Math.round((parsed.periodMs * 1000) / parsed.count));
    return {
      rate: spec.rate,
      intervalUs,
      toleranceUs: ((spec.burst ?? 1) - 1) * intervalUs,
      key: spec.key as ((args: unknown) => string | number) | undefined,
    };
  });
}
