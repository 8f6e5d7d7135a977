/**
 * Option validation in one place: every options object tasuki accepts (app, worker, lock, audit,
 * CLI) is checked by a zod schema built from these pieces, and every failure becomes one
 * {@link OptionsError} that names the field and quotes the bad value (a bounded prefix of it).
 * Durations are parsed here and nowhere else.
 */
import { z } from 'zod';
import { OptionsError, type FieldIssue, type TasukiErrorCode } from '../errors.js';
import { toMs } from './duration.js';
import { quote } from './quote.js';

export { quote };

const DURATION_HINT = 'ms as a number, or a string such as "500ms", "30s", "5m", "24h", "7d"';

/** A duration option: a number of ms or a string like `"30s"`; parsed to ms. */
export function duration(opts: { min?: number } = {}): z.ZodType<number, number | string> {
  const min = opts.min ?? 1;
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    const ms = toMs(value);
    if (ms === undefined || ms < min) {
      ctx.addIssue({
        code: 'custom',
        message:
          min > 0
            ? `${quote(value)} is not a positive duration (${DURATION_HINT})`
            : `${quote(value)} is not a duration (${DURATION_HINT})`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

/** An integer option of at least `min`. */
export function integer(min: number): z.ZodType<number, number> {
  return z.number().superRefine((value, ctx) => {
    if (!Number.isInteger(value) || value < min) {
      ctx.addIssue({ code: 'custom', message: `${quote(value)} is not an integer >= ${min}` });
    }
  });
}

function issueOf(i: z.core.$ZodIssue): FieldIssue[] {
  const path = i.path.map(String).join('.');
  if (i.code === 'unrecognized_keys') {
    return i.keys.map((k) => ({ path: path ? `${path}.${k}` : k, message: 'unknown option' }));
  }
  if (i.code === 'custom') return [{ path, message: i.message }];
  // zod's own messages ("Invalid input: expected number, received string") gain the bad value.
  const input = (i as { input?: unknown }).input;
  return [{ path, message: 'input' in i ? `${i.message} (got ${quote(input)})` : i.message }];
}

/**
 * Checks `input` against `schema` and returns the parsed options (defaults applied, durations in
 * ms); throws one {@link OptionsError} listing every bad field otherwise.
 *
 * @param what - what is being checked, for the message (e.g. "worker options").
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
  code: TasukiErrorCode = 'E_CONFIG',
): z.output<S> {
  const parsed = schema.safeParse(input ?? {}, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw new OptionsError(what, parsed.error.issues.flatMap(issueOf), code);
}
