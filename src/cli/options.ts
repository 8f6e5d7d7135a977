/**
 * Command-line option values go through the same zod pieces as the API's options
 * (`src/util/options.ts`), so both accept the same things. A command line only has strings: bare
 * digits are a number (for a duration, milliseconds, as a number is in the API).
 */
import { z } from 'zod';
import { duration, integer, parseOptions, quote } from '../util/options.js';

const DIGITS = /^\s*\d+(?:\.\d+)?\s*$/;

/** A duration option: `25000` (ms) or `"25s"`, `"500ms"`, `"5m"`...; parsed to ms. */
export function cliDuration(opts: { min?: number } = {}): z.ZodType<number, string> {
  return z
    .string()
    .transform((s) => (DIGITS.test(s) ? Number(s) : s))
    .pipe(duration(opts));
}

/** An integer option of at least `min`. */
export function cliInteger(min: number): z.ZodType<number, string> {
  return z
    .string()
    .transform((s, ctx) => {
      const n = /^\s*-?\d+\s*$/.test(s) ? Number(s) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min) {
        ctx.addIssue({ code: 'custom', message: `${quote(s)} is not an integer >= ${min}` });
        return z.NEVER;
      }
      return n;
    })
    .pipe(integer(min));
}

/**
 * Checks option values keyed by their flag (`{ '--grace': '25s' }`); throws one `OptionsError`
 * ("invalid command line: --grace: ...") naming every bad one.
 */
export function parseCli<S extends z.ZodType>(
  schema: S,
  values: Record<string, string | undefined>,
): z.output<S> {
  return parseOptions(schema, values, 'command line', 'E_OPTIONS');
}

/** `a,b, c` as `['a', 'b', 'c']`; `undefined` when the option was not given. */
export function parseQueues(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return [
    ...new Set(
      value
        .split(',')
        .map((q) => q.trim())
        .filter(Boolean),
    ),
  ];
}

/** `30000` as `30s`, `1500` as `1500 ms`: how the CLI shows a duration. */
export function formatMs(ms: number): string {
  if (ms >= 1000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms} ms`;
}

/** A list of names for a message: `"a", "b"`. */
export function names(list: readonly string[]): string {
  return list.length ? list.map((n) => quote(n)).join(', ') : '(none)';
}
