/** The options of the key audit, checked in one place (zod), defaults applied. */
import { z } from 'zod';
import { quote } from '../util/options.js';
import type { CreationReader } from './creation.js';

/** Progress of a running audit. */
export interface AuditProgress {
  scanned: number;
  totalKeys: number | null;
  findings: number;
}

/** Options of {@link auditKeys}. Every field is optional; defaults are listed. */
export interface AuditOptions {
  /** SCAN COUNT hint per batch, 1-10000 (default 200). Larger batches are faster and heavier. */
  count?: number;
  /** Pause between SCAN batches in ms (default 0), to spread the load on a busy Redis. */
  paceMs?: number;
  /** SCAN MATCH glob, to audit only part of the keyspace (default: every key). */
  match?: string;
  /**
   * Key names longer than this many bytes are reported as `long-name` (default 256), declared or
   * not: a name that long carries data, as the incident's 10 KB rate-limit keys did.
   */
  maxKeyBytes?: number;
  /**
   * Memory budget (MEMORY USAGE, bytes) of a key no declaration matches, which has no `maxBytes` of
   * its own; larger undeclared keys are reported as `over-budget` (default 1 MiB, 1048576).
   */
  unownedMaxBytes?: number;
  /** How many of the oldest keys to report (default 10). */
  limitOldest?: number;
  /** Most findings listed in the report; all are counted (default 1000). */
  maxFindings?: number;
  /** Report key names in full instead of shortening names over 120 bytes (default false). */
  fullNames?: boolean;
  /** Stops the audit at the next step; the report then has `complete: false`. */
  signal?: AbortSignal;
  /** Called after each SCAN batch. */
  onProgress?: (progress: AuditProgress) => void;
  /**
   * Creation-time readers by declaration id, for the app's own keys. tasuki's own keys use
   * {@link TASUKI_CREATION_READERS}.
   */
  readers?: Readonly<Record<string, CreationReader>>;
}

/** Default memory budget of a key no declaration matches: 1 MiB. */
export const DEFAULT_UNOWNED_MAX_BYTES = 1024 * 1024;
/** Default longest key name in bytes; longer names are reported as `long-name`. */
export const DEFAULT_MAX_KEY_BYTES = 256;

/** An integer option from `min` to `max`; any other value (a string too) is quoted in the message. */
function intRange(min: number, max: number): z.ZodType<number, number> {
  return z.unknown().superRefine((value, ctx) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      ctx.addIssue({ code: 'custom', message: `${quote(value)} is not an integer from ${min} to ${max}` });
    }
  }) as unknown as z.ZodType<number, number>;
}

/** A value `check` accepts, else an issue that quotes it and says what was `expected`. */
function valueOf<T>(check: (v: unknown) => boolean, expected: string): z.ZodType<T, T> {
  return z.unknown().superRefine((value, ctx) => {
    if (!check(value)) ctx.addIssue({ code: 'custom', message: `${quote(value)} is not ${expected}` });
  }) as unknown as z.ZodType<T, T>;
}

const isFunction = (v: unknown): boolean => typeof v === 'function';

/** A creation reader; checked in place (not copied), so a reader's `this` stays what it was. */
const readerSchema = valueOf<CreationReader>((v) => {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<CreationReader>;
  return (
    Number.isInteger(r.headBytes) &&
    (r.headBytes as number) >= 1 &&
    (r.headBytes as number) <= 1024 * 1024 &&
    typeof r.source === 'string' &&
    typeof r.parse === 'function'
  );
}, 'a creation reader ({ headBytes: 1 to 1048576, source: string, parse(head) })');

/** The audit's options, defaults applied; unknown options are refused (a typo would be ignored). */
export const auditOptionsSchema = z.strictObject({
  count: intRange(1, 10_000).default(200),
  paceMs: intRange(0, 60_000).default(0),
  match: z.string().optional(),
  maxKeyBytes: intRange(1, 512 * 1024 * 1024).default(DEFAULT_MAX_KEY_BYTES),
  unownedMaxBytes: intRange(1, Number.MAX_SAFE_INTEGER).default(DEFAULT_UNOWNED_MAX_BYTES),
  limitOldest: intRange(0, 10_000).default(10),
  maxFindings: intRange(0, 10_000_000).default(1000),
  fullNames: z.boolean().default(false),
  signal: valueOf<AbortSignal>((v) => v instanceof AbortSignal, 'an AbortSignal').optional(),
  onProgress: valueOf<(progress: AuditProgress) => void>(isFunction, 'a function').optional(),
  readers: z.record(z.string(), readerSchema).optional(),
});

export type CheckedOptions = z.output<typeof auditOptionsSchema>;
