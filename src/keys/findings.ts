/**
 * What the key audit reports: the kinds of finding, the report's shape, and the `--fail-on` rules
 * that turn findings into a failing exit code for CI.
 */
import { z } from 'zod';
import { parseOptions, quote } from '../util/options.js';

/** Kinds of problem the audit reports. */
export type FindingKind = 'unowned' | 'no-ttl' | 'over-budget' | 'long-name' | 'wrong-type';

/** Every finding kind, in report order. */
export const FINDING_KINDS: readonly FindingKind[] = [
  'unowned',
  'no-ttl',
  'over-budget',
  'long-name',
  'wrong-type',
];

/**
 * One problem with one key. A key gets every finding that applies: the incident's undeclared 10 KB
 * key names with no TTL get three (`unowned`, `no-ttl`, `long-name`).
 */
export interface KeyFinding {
  kind: FindingKind;
  /** The key name; shortened when long unless the audit ran with `fullNames`. */
  key: string;
  /** Length of the full key name in bytes. */
  keyBytes: number;
  /** Declaration the key matched, if any. */
  id: string | null;
  owner: string | null;
  /** Redis type of the key. */
  type: string;
  /** Remaining TTL in ms, or `null` when the key has none. */
  ttlMs: number | null;
  /** MEMORY USAGE in bytes, when Redis gave it. */
  bytes: number | null;
  /** What is wrong, in words. */
  detail: string;
}

/** How the age of a key was found. */
export type AgeBasis = 'metadata' | 'idle';

/** One of the oldest keys. */
export interface OldestKey {
  key: string;
  keyBytes: number;
  id: string | null;
  owner: string | null;
  /** Age in ms. With basis `idle` this is a lower bound: the time since the key was last touched. */
  ageMs: number;
  basis: AgeBasis;
  /** When the value was written (ms since epoch), from tasuki's value metadata. */
  createdAt: number | null;
  /** Who wrote the value, when its metadata says. */
  writer: string | null;
  /** Format version of the value, when its metadata says (app keyspace envelopes do). */
  version: number | null;
  /** The metadata the age came from, e.g. `finishedAt of the task record`. */
  source: string;
}

/**
 * Keys, memory and value format versions per declaration (a tasuki key or an app keyspace): the
 * totals the audit keeps whatever the number of keys.
 */
export interface DeclaredTotal {
  /** Declaration id, e.g. `task.result` or an app keyspace's name. */
  id: string;
  owner: string;
  keys: number;
  bytes: number;
  /** Keys without a TTL (counted also when the declaration gives a reason for none). */
  noTtl: number;
  /** Values per format version, from their metadata (app keyspaces); empty when none carry one. */
  versions: Record<string, number>;
}

/** Keys and memory per owner (`(unowned)` for keys no declaration matches). */
export interface OwnerTotal {
  owner: string;
  keys: number;
  bytes: number;
}

/**
 * Undeclared keys grouped by the shape of their name (`legacy:cache:user:*`), so a shared Redis full
 * of someone else's keys reads as a few families with a size each, not a million lines.
 */
export interface UnownedFamily {
  /** The name with parts that look like ids (digits, or longer than 32 characters) replaced by `*`. */
  pattern: string;
  keys: number;
  bytes: number;
  /** One key of the family, shortened like the findings. */
  example: string;
}

/** What an audit found. */
export interface AuditReport {
  /** False when the audit was cancelled before SCAN finished; then the report covers what was seen. */
  complete: boolean;
  /** Keys inspected (each once, although SCAN may return a key twice). */
  scanned: number;
  /** DBSIZE when the audit started, when Redis allowed it. */
  totalKeys: number | null;
  startedAt: number;
  durationMs: number;
  settings: {
    count: number;
    paceMs: number;
    match: string | null;
    maxKeyBytes: number;
    /** Memory budget of an undeclared key, in bytes (no declaration gives it one). */
    unownedMaxBytes: number;
  };
  /** Findings per kind (all of them, even when the list below is cut at `maxFindings`). */
  counts: Record<FindingKind, number>;
  /** The largest findings (by memory), at most `maxFindings`, largest first. */
  findings: KeyFinding[];
  /** Findings left out of {@link findings} because there were more than `maxFindings`. */
  findingsOmitted: number;
  oldest: OldestKey[];
  owners: OwnerTotal[];
  /** Totals per declaration, largest first. */
  declared: DeclaredTotal[];
  /** Undeclared keys by name shape, largest first (at most 50). */
  unownedFamilies: UnownedFamily[];
  /** Things the reader should know (idle time unavailable, cancelled...). */
  notes: string[];
}

const FAIL_ON_HINT = `use a comma list of ${FINDING_KINDS.join(', ')}, oversize (over-budget + long-name) or any`;

/** Bad words quoted in one `--fail-on` error at most; the rest are counted. */
const MAX_BAD_WORDS = 3;

/** A `--fail-on` value: a comma list of kinds, `oversize` or `any`, parsed to finding kinds. */
const failOnSchema = z.string().transform((value, ctx) => {
  const out = new Set<FindingKind>();
  const bad: string[] = [];
  const words = value
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  for (const w of words) {
    if (w === 'any') FINDING_KINDS.forEach((k) => out.add(k));
    else if (w === 'oversize') {
      out.add('over-budget');
      out.add('long-name');
    } else if ((FINDING_KINDS as readonly string[]).includes(w)) out.add(w as FindingKind);
    else bad.push(w);
  }
  if (bad.length) {
    const shown = bad.slice(0, MAX_BAD_WORDS).map((w) => quote(w));
    const more = bad.length > MAX_BAD_WORDS ? ` and ${bad.length - MAX_BAD_WORDS} more` : '';
    const what = bad.length === 1 ? 'is not a finding kind' : 'are not finding kinds';
    ctx.addIssue({ code: 'custom', message: `${shown.join(', ')}${more} ${what}; ${FAIL_ON_HINT}` });
  } else if (!words.length) {
    // An empty list (an unset CI variable) would silently fail on nothing.
    ctx.addIssue({ code: 'custom', message: `${quote(value)} names no finding kind; ${FAIL_ON_HINT}` });
  }
  return [...out];
});

/**
 * Parses `--fail-on`: a comma list of finding kinds, `oversize` (= over-budget and long-name), or
 * `any`. Throws `E_OPTIONS` quoting the unknown words (a bounded prefix of each), or when the list
 * names no kind at all.
 *
 * @param field - the option's name in the message (default `--fail-on`).
 */
export function parseFailOn(value: string, field = '--fail-on'): FindingKind[] {
  const parsed = parseOptions(
    z.object({ [field]: failOnSchema }),
    { [field]: value },
    'fail-on kinds',
    'E_OPTIONS',
  );
  return parsed[field] as FindingKind[];
}

/** The kinds in `failOn` the report has findings of, in report order. */
export function failingKinds(report: AuditReport, failOn: readonly FindingKind[]): FindingKind[] {
  return FINDING_KINDS.filter((k) => failOn.includes(k) && report.counts[k] > 0);
}

/**
 * The family of an undeclared key name: split at `:`, parts with digits or longer than 32 characters
 * become `*`, at most four parts are kept. Names over `maxKeyBytes` form the family `(long names)`.
 */
export function familyOf(name: string, nameBytes: number, maxKeyBytes: number): string {
  if (nameBytes > maxKeyBytes) return '(long names)';
  const parts = name.split(':').map((p) => (/\d/.test(p) || p.length > 32 ? '*' : p));
  const kept = parts.slice(0, 4);
  if (parts.length > 4) kept.push('*');
  return kept.join(':').replace(/(\*:)+\*$/, '*');
}
