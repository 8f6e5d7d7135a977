/**
 * The key audit: scans a live Redis and holds every key against the keyspace registry. It reports
 * keys nobody declared (no owner), keys without the TTL their declaration promises, keys over their
 * memory budget, key names too long to be anything but a payload (the incident's 10 KB names), keys
 * of the wrong type, the oldest keys, and memory per owner.
 *
 * Safe on a production Redis by construction: it sends only SCAN (bounded COUNT, never KEYS), TYPE,
 * PTTL, MEMORY USAGE, OBJECT IDLETIME, DBSIZE and a bounded GETRANGE of the head of tasuki's own
 * string values, in one pipeline per SCAN batch; it sleeps `paceMs` between batches and stops at the
 * next step when its AbortSignal fires, returning what it has found so far.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { OptionsError, TasukiError } from '../errors.js';
import type { KeyDef, Keyspace } from './registry.js';

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

/** One problem with one key. A key can have several (an unowned key with a 10 KB name has two). */
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
  /** The metadata the age came from, e.g. `finishedAt of the task record`. */
  source: string;
}

/** Keys and memory per owner (`(unowned)` for keys no declaration matches). */
export interface OwnerTotal {
  owner: string;
  keys: number;
  bytes: number;
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
  settings: { count: number; paceMs: number; match: string | null; maxKeyBytes: number };
  /** Findings per kind (all of them, even when the list below is cut at `maxFindings`). */
  counts: Record<FindingKind, number>;
  findings: KeyFinding[];
  /** Findings left out of {@link findings} because there were more than `maxFindings`. */
  findingsOmitted: number;
  oldest: OldestKey[];
  owners: OwnerTotal[];
  /** Things the reader should know (idle time unavailable, cancelled...). */
  notes: string[];
}

/** Creation metadata read from a value. */
export interface CreationMetadata {
  createdAt: number;
  writer?: string | undefined;
}

/**
 * Reads who wrote a string value and when from the head of the value (GETRANGE 0..headBytes-1, so
 * the audit never pulls a large value across the network).
 */
export interface CreationReader {
  /** Bytes read from the start of the value. */
  headBytes: number;
  /** Where the time comes from, in words (shown in the report). */
  source: string;
  /** Parses the head; `undefined` when it holds no metadata. */
  parse(head: string): CreationMetadata | undefined;
}

/**
 * Readers for tasuki's own long-lived values, by declaration id. A task record (JSON) begins with
 * `state, task, attempt, worker, startedAt, finishedAt` before its result, so its head carries who
 * wrote it and when. An idempotency key holds a task id whose first part is the enqueue time in ms.
 */
export const TASUKI_CREATION_READERS: Readonly<Record<string, CreationReader>> = Object.freeze({
  'task.result': {
    headBytes: 1024,
    source: 'finishedAt of the task record',
    parse(head: string): CreationMetadata | undefined {
      const at = /"finishedAt":(\d{1,16})[,}]/.exec(head);
      if (!at) return undefined;
      const w = /"worker":("(?:[^"\\]|\\.){0,512}")/.exec(head);
      let writer: string | undefined;
      try {
        writer = w ? (JSON.parse(w[1] as string) as string) : undefined;
      } catch {
        writer = undefined;
      }
      return { createdAt: Number(at[1]), writer };
    },
  },
  'task.idempotency': {
    headBytes: 160,
    source: 'enqueue time in the task id it holds',
    parse(head: string): CreationMetadata | undefined {
      const m = /^(\d{10,16})-[0-9a-z]+@/.exec(head);
      return m ? { createdAt: Number(m[1]) } : undefined;
    },
  },
});

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
  /** Key names longer than this many bytes are reported as `long-name` (default 256). */
  maxKeyBytes?: number;
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

const UNOWNED = '(unowned)';

function checkOptions(
  o: AuditOptions,
): Required<Pick<AuditOptions, 'count' | 'paceMs' | 'maxKeyBytes' | 'limitOldest' | 'maxFindings'>> {
  const issues: { path: string; message: string }[] = [];
  const int = (name: string, v: number | undefined, def: number, min: number, max: number): number => {
    const n = v ?? def;
    if (!Number.isInteger(n) || n < min || n > max) {
      issues.push({ path: name, message: `${String(v)} is not an integer from ${min} to ${max}` });
    }
    return n;
  };
  const r = {
    count: int('count', o.count, 200, 1, 10_000),
    paceMs: int('paceMs', o.paceMs, 0, 0, 60_000),
    maxKeyBytes: int('maxKeyBytes', o.maxKeyBytes, 256, 1, 512 * 1024 * 1024),
    limitOldest: int('limitOldest', o.limitOldest, 10, 0, 10_000),
    maxFindings: int('maxFindings', o.maxFindings, 1000, 0, 10_000_000),
  };
  if (issues.length) throw new OptionsError('audit options', issues);
  return r;
}

/** The name as shown in a report: names over 120 bytes are cut, with their full length. */
export function displayKey(name: Buffer, full = false): string {
  const text = name.toString('utf8');
  if (full || name.length <= 120) return text;
  return `${text.slice(0, 80)}… (${name.length} bytes)`;
}

class Abort extends Error {}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new Abort());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Abort());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function redisFailure(what: string, err: Error): TasukiError {
  const perm = /NOPERM/.test(err.message)
    ? ' The audit needs these read-only commands: SCAN, TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME, GETRANGE (DBSIZE optional).'
    : '';
  return new TasukiError('E_REDIS', `key audit: ${what} failed: Redis said "${err.message}".${perm}`, {
    cause: err,
  });
}

/** The master nodes to scan: the client itself, or every master of a cluster. */
function scanTargets(redis: Redis | Cluster): Redis[] {
  const maybe = redis as { nodes?: unknown };
  if (typeof maybe.nodes === 'function' && 'isCluster' in redis && redis.isCluster) {
    return (redis as Cluster).nodes('master');
  }
  return [redis as Redis];
}

/** Collects findings, oldest keys and totals as batches come in. */
class Collector {
  readonly counts = Object.fromEntries(FINDING_KINDS.map((k) => [k, 0])) as Record<FindingKind, number>;
  readonly findings: KeyFinding[] = [];
  omitted = 0;
  oldest: OldestKey[] = [];
  readonly owners = new Map<string, OwnerTotal>();
  scanned = 0;

  constructor(
    private readonly maxFindings: number,
    private readonly limitOldest: number,
  ) {}

  add(f: KeyFinding): void {
    this.counts[f.kind]++;
    if (this.findings.length < this.maxFindings) this.findings.push(f);
    else this.omitted++;
  }

  total(owner: string, bytes: number | null): void {
    const t = this.owners.get(owner) ?? { owner, keys: 0, bytes: 0 };
    t.keys++;
    t.bytes += bytes ?? 0;
    this.owners.set(owner, t);
  }

  age(o: OldestKey): void {
    if (this.limitOldest === 0) return;
    const worst = this.oldest[this.oldest.length - 1];
    if (this.oldest.length >= this.limitOldest && worst && worst.ageMs >= o.ageMs) return;
    this.oldest.push(o);
    this.oldest.sort((a, b) => b.ageMs - a.ageMs);
    if (this.oldest.length > this.limitOldest) this.oldest.length = this.limitOldest;
  }

  findingCount(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
}

function reply<T>(r: [Error | null, unknown] | undefined, what: string): T {
  if (!r) throw new TasukiError('E_REDIS', `key audit: ${what} got no reply`);
  if (r[0]) throw redisFailure(what, r[0]);
  return r[1] as T;
}

/**
 * Audits the keys of a live Redis against one or more keyspaces (tasuki's, an app's). Read-only,
 * paced and cancellable: see the module comment. Throws `E_REDIS` when Redis refuses a command the
 * audit needs, `E_OPTIONS` for bad options.
 */
export async function auditKeys(
  redis: Redis | Cluster,
  spaces: Keyspace | readonly Keyspace[],
  options: AuditOptions = {},
): Promise<AuditReport> {
  const o = checkOptions(options);
  const list = Array.isArray(spaces) ? (spaces as readonly Keyspace[]) : [spaces as Keyspace];
  const signal = options.signal;
  const startedAt = Date.now();
  const c = new Collector(o.maxFindings, o.limitOldest);
  const notes: string[] = [];
  const seen = new Set<string>();
  const nodes = scanTargets(redis);
  let idleUnavailable: string | undefined;
  let complete = true;

  const match = (name: string): KeyDef | undefined => {
    for (const s of list) {
      const d = s.match(name);
      if (d) return d;
    }
    return undefined;
  };
  const readerFor = (def: KeyDef): CreationReader | undefined =>
    options.readers?.[def.spec.id] ??
    (def.spec.owner.startsWith('tasuki') ? TASUKI_CREATION_READERS[def.spec.id] : undefined);

  let totalKeys: number | null = 0;
  for (const node of nodes) {
    try {
      totalKeys = (totalKeys ?? 0) + (await abortable(node.dbsize(), signal));
    } catch (err) {
      if (err instanceof Abort) break;
      totalKeys = null;
      break;
    }
  }

  const inspect = async (node: Redis, keys: Buffer[]): Promise<void> => {
    const p = node.pipeline();
    for (const k of keys) {
      p.type(k);
      p.pttl(k);
      p.call('MEMORY', 'USAGE', k);
      p.call('OBJECT', 'IDLETIME', k);
    }
    const res = (await abortable(p.exec(), signal)) ?? [];
    const now = Date.now();
    const pending: { name: Buffer; def: KeyDef; reader: CreationReader; idle: number | null }[] = [];
    const rows: {
      name: Buffer;
      text: string;
      def: KeyDef | undefined;
      type: string;
      ttlMs: number | null;
      bytes: number | null;
      idle: number | null;
    }[] = [];
    keys.forEach((name, i) => {
      const type = reply<string>(res[i * 4], 'TYPE');
      const pttl = reply<number>(res[i * 4 + 1], 'PTTL');
      if (type === 'none' || pttl === -2) return; // gone since SCAN returned it
      const bytes = reply<number | null>(res[i * 4 + 2], 'MEMORY USAGE');
      const idleReply = res[i * 4 + 3];
      let idle: number | null = null;
      if (idleReply?.[0]) idleUnavailable ??= idleReply[0].message;
      else if (typeof idleReply?.[1] === 'number') idle = idleReply[1];
      const text = name.toString('utf8');
      rows.push({ name, text, def: match(text), type, ttlMs: pttl < 0 ? null : pttl, bytes, idle });
    });
    for (const r of rows) {
      c.scanned++;
      const base = {
        key: displayKey(r.name, options.fullNames),
        keyBytes: r.name.length,
        id: r.def?.spec.id ?? null,
        owner: r.def?.spec.owner ?? null,
        type: r.type,
        ttlMs: r.ttlMs,
        bytes: r.bytes,
      };
      c.total(r.def?.spec.owner ?? UNOWNED, r.bytes);
      if (r.name.length > o.maxKeyBytes) {
        c.add({
          ...base,
          kind: 'long-name',
          detail: `key name is ${r.name.length} bytes (limit ${o.maxKeyBytes}): a payload in the name? Put data in the value or a store, and a bounded id or hash in the name (keyPart).`,
        });
      }
      const def = r.def;
      if (!def) {
        c.add({ ...base, kind: 'unowned', detail: unownedDetail(r.text, list) });
      } else {
        const s = def.spec;
        if (r.type !== s.type) {
          c.add({ ...base, kind: 'wrong-type', detail: `declared ${s.type} ("${s.id}"), found ${r.type}` });
        }
        if (s.ttlMs !== undefined && r.ttlMs === null) {
          c.add({
            ...base,
            kind: 'no-ttl',
            detail: `"${s.id}" is declared with a TTL of ${s.ttlMs} ms, but this key has none and will never expire`,
          });
        }
        // A budget is set for the declared type; a key of another type is reported as that only.
        if (r.type === s.type && r.bytes !== null && r.bytes > s.maxBytes) {
          c.add({
            ...base,
            kind: 'over-budget',
            detail: `uses ${r.bytes} bytes; "${s.id}" has a budget of ${s.maxBytes} bytes`,
          });
        }
        const reader = r.type === 'string' ? readerFor(def) : undefined;
        if (reader) {
          pending.push({ name: r.name, def, reader, idle: r.idle });
          continue;
        }
      }
      if (r.idle !== null) {
        c.age({
          key: base.key,
          keyBytes: base.keyBytes,
          id: base.id,
          owner: base.owner,
          ageMs: r.idle * 1000,
          basis: 'idle',
          createdAt: null,
          writer: null,
          source: 'OBJECT IDLETIME (a lower bound: time since last access)',
        });
      }
    }
    if (pending.length === 0) return;
    // Idle times were read above, before these reads touch the keys.
    const mp = node.pipeline();
    for (const q of pending) mp.getrangeBuffer(q.name, 0, q.reader.headBytes - 1);
    const meta = (await abortable(mp.exec(), signal)) ?? [];
    pending.forEach((q, j) => {
      const head = reply<Buffer | null>(meta[j], 'GETRANGE');
      const parsed = head ? q.reader.parse(head.toString('utf8')) : undefined;
      const base = {
        key: displayKey(q.name, options.fullNames),
        keyBytes: q.name.length,
        id: q.def.spec.id,
        owner: q.def.spec.owner,
      };
      if (parsed) {
        c.age({
          ...base,
          ageMs: Math.max(0, now - parsed.createdAt),
          basis: 'metadata',
          createdAt: parsed.createdAt,
          writer: parsed.writer ?? null,
          source: q.reader.source,
        });
      } else if (q.idle !== null) {
        c.age({
          ...base,
          ageMs: q.idle * 1000,
          basis: 'idle',
          createdAt: null,
          writer: null,
          source: 'OBJECT IDLETIME (a lower bound: the value carried no metadata)',
        });
      }
    });
  };

  try {
    for (const node of nodes) {
      let cursor = '0';
      do {
        if (signal?.aborted) throw new Abort();
        const args = options.match ? ['MATCH', options.match] : [];
        let batch: [Buffer, Buffer[]];
        try {
          batch = (await abortable(
            node.callBuffer('SCAN', cursor, ...args, 'COUNT', String(o.count)),
            signal,
          )) as [Buffer, Buffer[]];
        } catch (err) {
          if (err instanceof Abort) throw err;
          throw redisFailure('SCAN', err instanceof Error ? err : new Error(String(err)));
        }
        cursor = batch[0].toString();
        const fresh: Buffer[] = [];
        for (const k of batch[1]) {
          // SCAN may return a key twice; long names are remembered by their hash to bound memory.
          const id =
            k.length > 64
              ? 'h' + createHash('sha256').update(k).digest('base64')
              : 'k' + k.toString('latin1');
          if (seen.has(id)) continue;
          seen.add(id);
          fresh.push(k);
        }
        if (fresh.length) await inspect(node, fresh);
        options.onProgress?.({ scanned: c.scanned, totalKeys, findings: c.findingCount() });
        if (cursor !== '0' && o.paceMs > 0) {
          try {
            await sleep(o.paceMs, undefined, signal ? { signal } : {});
          } catch {
            throw new Abort();
          }
        }
      } while (cursor !== '0');
    }
  } catch (err) {
    if (!(err instanceof Abort)) throw err;
    complete = false;
    notes.push(`cancelled after ${c.scanned} keys: the report covers only the keys seen so far`);
  }

  if (idleUnavailable) {
    notes.push(
      `idle time unavailable (Redis said "${idleUnavailable}"), so ages are known only from tasuki metadata`,
    );
  }
  return {
    complete,
    scanned: c.scanned,
    totalKeys,
    startedAt,
    durationMs: Date.now() - startedAt,
    settings: { count: o.count, paceMs: o.paceMs, match: options.match ?? null, maxKeyBytes: o.maxKeyBytes },
    counts: c.counts,
    findings: c.findings,
    findingsOmitted: c.omitted,
    oldest: c.oldest,
    owners: [...c.owners.values()].sort((a, b) => b.bytes - a.bytes || a.owner.localeCompare(b.owner)),
    notes,
  };
}

/** Why a key has no owner, with a hint when it looks like a declared key of another version. */
function unownedDetail(name: string, spaces: readonly Keyspace[]): string {
  for (const s of spaces) {
    for (const def of s.list()) {
      const loose = new RegExp(def.regex.source.replace(`:v${def.spec.version}:`, ':v(\\d+):'));
      const m = loose.exec(name);
      if (m) {
        return `no declaration matches; looks like "${def.spec.id}" but version v${m[1]} (declared: v${def.spec.version}) — left over from an old version?`;
      }
    }
  }
  return 'no declaration matches: nobody owns this key. Declare it (app.keyspace.define) or find who writes it';
}

/**
 * Parses `--fail-on`: a comma list of finding kinds, `oversize` (= over-budget and long-name), or
 * `any`. Throws `E_OPTIONS` naming an unknown word.
 */
export function parseFailOn(value: string): FindingKind[] {
  const out = new Set<FindingKind>();
  for (const raw of value.split(',')) {
    const w = raw.trim();
    if (!w) continue;
    if (w === 'any') FINDING_KINDS.forEach((k) => out.add(k));
    else if (w === 'oversize') {
      out.add('over-budget');
      out.add('long-name');
    } else if ((FINDING_KINDS as readonly string[]).includes(w)) out.add(w as FindingKind);
    else {
      throw new OptionsError('--fail-on', [
        {
          path: '--fail-on',
          message: `"${w}" is not a finding kind; use a comma list of ${FINDING_KINDS.join(', ')}, oversize (over-budget + long-name) or any`,
        },
      ]);
    }
  }
  return [...out];
}

/** The kinds in `failOn` the report has findings of, in report order. */
export function failingKinds(report: AuditReport, failOn: readonly FindingKind[]): FindingKind[] {
  return FINDING_KINDS.filter((k) => failOn.includes(k) && report.counts[k] > 0);
}
