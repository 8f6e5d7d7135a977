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
import { z } from 'zod';
import { TasukiError } from '../errors.js';
import { parseOptions, quote } from '../util/options.js';
import { creationReader, type CreationReader } from './creation.js';
import {
  familyOf,
  FINDING_KINDS,
  type AuditReport,
  type FindingKind,
  type KeyFinding,
  type OldestKey,
  type OwnerTotal,
  type UnownedFamily,
} from './findings.js';
import type { KeyDef, Keyspace } from './registry.js';

export {
  FINDING_KINDS,
  failingKinds,
  parseFailOn,
  type AgeBasis,
  type AuditReport,
  type FindingKind,
  type KeyFinding,
  type OldestKey,
  type OwnerTotal,
  type UnownedFamily,
} from './findings.js';
export { TASUKI_CREATION_READERS, type CreationMetadata, type CreationReader } from './creation.js';

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

const UNOWNED = '(unowned)';
const MAX_FAMILIES = 10_000;

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
const auditOptionsSchema = z.strictObject({
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

type CheckedOptions = z.output<typeof auditOptionsSchema>;

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
  if (err.name !== 'ReplyError') {
    // Not an answer from Redis: the connection went away (or never came back).
    return new TasukiError(
      'E_REDIS',
      `key audit: lost the connection to Redis during ${what} (${err.message}). Check that Redis is reachable, then run it again.`,
      { cause: err },
    );
  }
  const perm = /NOPERM/.test(err.message)
    ? ' The audit needs these read-only commands: SCAN, TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME, GETRANGE (DBSIZE optional).'
    : '';
  return new TasukiError('E_REDIS', `key audit: ${what} failed: Redis said "${err.message}".${perm}`, {
    cause: err,
  });
}

/** The master nodes to scan: the client itself, or every master of a cluster. */
function scanTargets(redis: Redis | Cluster): Redis[] {
  if ('isCluster' in redis && redis.isCluster) return (redis as Cluster).nodes('master');
  return [redis as Redis];
}

/** Collects findings, oldest keys and totals as batches come in. */
class Collector {
  readonly counts = Object.fromEntries(FINDING_KINDS.map((k) => [k, 0])) as Record<FindingKind, number>;
  readonly findings: KeyFinding[] = [];
  omitted = 0;
  oldest: OldestKey[] = [];
  readonly owners = new Map<string, OwnerTotal>();
  readonly families = new Map<string, UnownedFamily>();
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

  family(pattern: string, bytes: number | null, example: string): void {
    let f = this.families.get(pattern);
    if (!f) {
      // Bound the memory of a Redis full of oddly named keys: past the cap, families merge.
      if (this.families.size >= MAX_FAMILIES) return this.family('(other)', bytes, example);
      f = { pattern, keys: 0, bytes: 0, example };
      this.families.set(pattern, f);
    }
    f.keys++;
    f.bytes += bytes ?? 0;
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

/** What the first pipeline learnt about one key. */
interface Inspected {
  name: Buffer;
  def: KeyDef | undefined;
  type: string;
  ttlMs: number | null;
  bytes: number | null;
  /** OBJECT IDLETIME in seconds, when Redis tracks it. */
  idle: number | null;
}

/** A key whose creation time is read from its value in the second pipeline. */
interface MetadataRead {
  key: Inspected;
  reader: CreationReader;
}

const IDLE_SOURCE = 'OBJECT IDLETIME (a lower bound: time since last access)';

/** One run of the audit: scans node by node, batch by batch, and collects what it finds. */
class KeyAudit {
  private readonly c: Collector;
  private readonly seen = new Set<string>();
  private readonly spaces: readonly Keyspace[];
  private idleUnavailable: string | undefined;
  totalKeys: number | null = 0;

  constructor(
    spaces: Keyspace | readonly Keyspace[],
    private readonly o: CheckedOptions,
  ) {
    this.spaces = Array.isArray(spaces) ? (spaces as readonly Keyspace[]) : [spaces as Keyspace];
    this.c = new Collector(o.maxFindings, o.limitOldest);
  }

  /** Keys inspected so far. */
  get scanned(): number {
    return this.c.scanned;
  }

  private get signal(): AbortSignal | undefined {
    return this.o.signal;
  }

  /** DBSIZE of every node, for the progress bar; `null` when Redis refuses it. */
  async count(nodes: readonly Redis[]): Promise<void> {
    for (const node of nodes) {
      try {
        this.totalKeys = (this.totalKeys ?? 0) + (await abortable(node.dbsize(), this.signal));
      } catch (err) {
        if (err instanceof Abort) throw err;
        this.totalKeys = null;
        return;
      }
    }
  }

  /** Scans one node to the end: SCAN batch, inspect, report progress, pause. */
  async scan(node: Redis): Promise<void> {
    const match = this.o.match ? ['MATCH', this.o.match] : [];
    let cursor = '0';
    do {
      if (this.signal?.aborted) throw new Abort();
      let batch: [Buffer, Buffer[]];
      try {
        batch = (await abortable(
          node.callBuffer('SCAN', cursor, ...match, 'COUNT', String(this.o.count)),
          this.signal,
        )) as [Buffer, Buffer[]];
      } catch (err) {
        if (err instanceof Abort) throw err;
        throw redisFailure('SCAN', err instanceof Error ? err : new Error(String(err)));
      }
      cursor = batch[0].toString();
      const fresh = batch[1].filter((k) => this.firstSight(k));
      if (fresh.length) await this.inspect(node, fresh);
      this.o.onProgress?.({
        scanned: this.c.scanned,
        totalKeys: this.o.match ? null : this.totalKeys,
        findings: this.c.findingCount(),
      });
      if (cursor !== '0' && this.o.paceMs > 0) {
        try {
          await sleep(this.o.paceMs, undefined, this.signal ? { signal: this.signal } : {});
        } catch {
          throw new Abort();
        }
      }
    } while (cursor !== '0');
  }

  /** SCAN may return a key twice; long names are remembered by their hash to bound memory. */
  private firstSight(k: Buffer): boolean {
    const id =
      k.length > 64 ? 'h' + createHash('sha256').update(k).digest('base64') : 'k' + k.toString('latin1');
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    return true;
  }

  private match(name: string): KeyDef | undefined {
    for (const s of this.spaces) {
      const d = s.match(name);
      if (d) return d;
    }
    return undefined;
  }

  /** One pipeline of TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME per key; then the metadata reads. */
  private async inspect(node: Redis, keys: Buffer[]): Promise<void> {
    const p = node.pipeline();
    for (const k of keys) {
      p.type(k);
      p.pttl(k);
      p.call('MEMORY', 'USAGE', k);
      p.call('OBJECT', 'IDLETIME', k);
    }
    const res = (await abortable(p.exec(), this.signal)) ?? [];
    const reads: MetadataRead[] = [];
    keys.forEach((name, i) => {
      const type = reply<string>(res[i * 4], 'TYPE');
      const pttl = reply<number>(res[i * 4 + 1], 'PTTL');
      if (type === 'none' || pttl === -2) return; // gone since SCAN returned it
      const bytes = reply<number | null>(res[i * 4 + 2], 'MEMORY USAGE');
      const idleReply = res[i * 4 + 3];
      let idle: number | null = null;
      if (idleReply?.[0]) this.idleUnavailable ??= idleReply[0].message;
      else if (typeof idleReply?.[1] === 'number') idle = idleReply[1];
      const key: Inspected = {
        name,
        def: this.match(name.toString('utf8')),
        type,
        ttlMs: pttl < 0 ? null : pttl,
        bytes,
        idle,
      };
      this.classify(key);
      const reader = key.def && type === 'string' ? creationReader(key.def, this.o.readers) : undefined;
      if (reader) reads.push({ key, reader });
      else this.ageFromIdle(key, IDLE_SOURCE);
    });
    if (reads.length) await this.readMetadata(node, reads);
  }

  private base(k: Inspected): Omit<KeyFinding, 'kind' | 'detail'> {
    return {
      key: displayKey(k.name, this.o.fullNames),
      keyBytes: k.name.length,
      id: k.def?.spec.id ?? null,
      owner: k.def?.spec.owner ?? null,
      type: k.type,
      ttlMs: k.ttlMs,
      bytes: k.bytes,
    };
  }

  /** Counts the key for its owner and records every finding it has. */
  private classify(k: Inspected): void {
    const c = this.c;
    c.scanned++;
    c.total(k.def?.spec.owner ?? UNOWNED, k.bytes);
    const base = this.base(k);
    if (k.name.length > this.o.maxKeyBytes) {
      c.add({
        ...base,
        kind: 'long-name',
        detail: `key name is ${k.name.length} bytes (limit ${this.o.maxKeyBytes}): a payload in the name? Put data in the value or a store, and a bounded id or hash in the name (keyPart).`,
      });
    }
    if (!k.def) {
      // No declaration: no owner, and no TTL or budget of its own, so the defaults apply.
      const text = k.name.toString('utf8');
      c.add({ ...base, kind: 'unowned', detail: unownedDetail(text, this.spaces) });
      if (k.ttlMs === null) {
        c.add({
          ...base,
          kind: 'no-ttl',
          detail:
            'undeclared and without a TTL: it will never expire, and nobody is known to delete it. Give it a TTL, or declare it with the reason it has none',
        });
      }
      if (k.bytes !== null && k.bytes > this.o.unownedMaxBytes) {
        c.add({
          ...base,
          kind: 'over-budget',
          detail: `uses ${k.bytes} bytes; an undeclared key has the default budget of ${this.o.unownedMaxBytes} bytes (unownedMaxBytes, --unowned-max-bytes). Declare it with its own maxBytes, or find who writes it`,
        });
      }
      c.family(familyOf(text, k.name.length, this.o.maxKeyBytes), k.bytes, base.key);
      return;
    }
    const s = k.def.spec;
    if (k.type !== s.type) {
      c.add({ ...base, kind: 'wrong-type', detail: `declared ${s.type} ("${s.id}"), found ${k.type}` });
    }
    if (s.ttlMs !== undefined && k.ttlMs === null) {
      c.add({
        ...base,
        kind: 'no-ttl',
        detail: `"${s.id}" is declared with a TTL of ${s.ttlMs} ms, but this key has none and will never expire`,
      });
    }
    // A budget is set for the declared type; a key of another type is reported as that only.
    if (k.type === s.type && k.bytes !== null && k.bytes > s.maxBytes) {
      c.add({
        ...base,
        kind: 'over-budget',
        detail: `uses ${k.bytes} bytes; "${s.id}" has a budget of ${s.maxBytes} bytes`,
      });
    }
  }

  private ageFromIdle(k: Inspected, source: string): void {
    if (k.idle === null) return;
    const { key, keyBytes, id, owner } = this.base(k);
    this.c.age({
      key,
      keyBytes,
      id,
      owner,
      ageMs: k.idle * 1000,
      basis: 'idle',
      createdAt: null,
      writer: null,
      source,
    });
  }

  /** Bounded GETRANGEs of values that carry who wrote them and when. Idle times were read before. */
  private async readMetadata(node: Redis, reads: readonly MetadataRead[]): Promise<void> {
    const p = node.pipeline();
    for (const r of reads) p.getrangeBuffer(r.key.name, 0, r.reader.headBytes - 1);
    const res = (await abortable(p.exec(), this.signal)) ?? [];
    const now = Date.now();
    reads.forEach((r, j) => {
      const head = reply<Buffer | null>(res[j], 'GETRANGE');
      const meta = head ? r.reader.parse(head.toString('utf8')) : undefined;
      if (!meta) {
        this.ageFromIdle(r.key, 'OBJECT IDLETIME (a lower bound: the value carried no metadata)');
        return;
      }
      const { key, keyBytes, id, owner } = this.base(r.key);
      this.c.age({
        key,
        keyBytes,
        id,
        owner,
        ageMs: Math.max(0, now - meta.createdAt),
        basis: 'metadata',
        createdAt: meta.createdAt,
        writer: meta.writer ?? null,
        source: r.reader.source,
      });
    });
  }

  report(startedAt: number, complete: boolean): AuditReport {
    const c = this.c;
    const notes: string[] = [];
    if (!complete)
      notes.push(`cancelled after ${c.scanned} keys: the report covers only the keys seen so far`);
    if (this.idleUnavailable) {
      notes.push(
        `idle time unavailable (Redis said "${this.idleUnavailable}"), so ages are known only from tasuki metadata`,
      );
    }
    return {
      complete,
      scanned: c.scanned,
      totalKeys: this.totalKeys,
      startedAt,
      durationMs: Date.now() - startedAt,
      settings: {
        count: this.o.count,
        paceMs: this.o.paceMs,
        match: this.o.match ?? null,
        maxKeyBytes: this.o.maxKeyBytes,
        unownedMaxBytes: this.o.unownedMaxBytes,
      },
      counts: c.counts,
      findings: c.findings,
      findingsOmitted: c.omitted,
      oldest: c.oldest,
      owners: [...c.owners.values()].sort((a, b) => b.bytes - a.bytes || a.owner.localeCompare(b.owner)),
      unownedFamilies: [...c.families.values()]
        .sort((a, b) => b.bytes - a.bytes || b.keys - a.keys || a.pattern.localeCompare(b.pattern))
        .slice(0, 50),
      notes,
    };
  }
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
  const audit = new KeyAudit(spaces, parseOptions(auditOptionsSchema, options, 'audit options', 'E_OPTIONS'));
  const startedAt = Date.now();
  const nodes = scanTargets(redis);
  try {
    await audit.count(nodes);
    for (const node of nodes) await audit.scan(node);
  } catch (err) {
    if (err instanceof Abort) return audit.report(startedAt, false);
    if (err instanceof TasukiError) throw err;
    throw redisFailure(
      `the batch after ${audit.scanned} keys`,
      err instanceof Error ? err : new Error(String(err)),
    );
  }
  return audit.report(startedAt, true);
}

/** Why a key has no owner, with a hint when it looks like a declared key of another version. */
function unownedDetail(name: string, spaces: readonly Keyspace[]): string {
  for (const s of spaces) {
    for (const def of s.list()) {
      const loose = new RegExp(def.regex.source.replace(`:v${def.nameVersion}:`, ':v(\\d+):'));
      const m = loose.exec(name);
      if (m) {
        return `no declaration matches; looks like "${def.spec.id}" but version v${m[1]} (declared: v${def.nameVersion}) — left over from an old version?`;
      }
    }
  }
  return 'no declaration matches: nobody owns this key. Declare it (app.keyspace.define) or find who writes it';
}
