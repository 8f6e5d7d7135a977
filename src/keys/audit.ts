/**
 * The key audit: scans a live Redis and holds every key against the keyspace registry. It reports
 * keys nobody declared (no owner), keys without the TTL their declaration promises, keys over their
 * memory budget, key names too long to be anything but a payload (the incident's 10 KB names), keys
 * of the wrong type, the oldest keys, and memory per owner.
 *
 * Safe on a production Redis by construction: it sends only SCAN (bounded COUNT, never KEYS), DBSIZE
 * and, per SCAN batch, TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME and bounded GETRANGEs of values
 * that carry metadata (src/keys/audit-inspect.ts). It sleeps `paceMs` between batches and stops at
 * the next step when its AbortSignal fires, returning what it has found so far. Its memory is
 * bounded whatever the number of keys (src/keys/audit-collect.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { TasukiError } from '../errors.js';
import { parseOptions } from '../util/options.js';
import { Collector } from './audit-collect.js';
import { auditOptionsSchema, type AuditOptions, type CheckedOptions } from './audit-options.js';
import { Abort, abortable, Inspector, redisFailure, type Inspected } from './audit-inspect.js';
import { RespPipe } from './audit-wire.js';
import type { CreationReader } from './creation.js';
import { familyOf, type AuditReport, type FindingKind, type KeyFinding } from './findings.js';
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
  type DeclaredTotal,
} from './findings.js';
export { TASUKI_CREATION_READERS, type CreationMetadata, type CreationReader } from './creation.js';
export {
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_UNOWNED_MAX_BYTES,
  type AuditOptions,
  type AuditProgress,
} from './audit-options.js';

const UNOWNED = '(unowned)';

/** The name as shown in a report: names over 120 bytes are cut, with their full length. */
export function displayKey(name: Buffer, full = false): string {
  const text = name.toString('utf8');
  if (full || name.length <= 120) return text;
  return `${text.slice(0, 80)}… (${name.length} bytes)`;
}

/** The master nodes to scan: the client itself, or every master of a cluster. */
function scanTargets(redis: Redis | Cluster): { nodes: Redis[]; cluster: boolean } {
  if ('isCluster' in redis && redis.isCluster)
    return { nodes: (redis as Cluster).nodes('master'), cluster: true };
  return { nodes: [redis as Redis], cluster: false };
}

const IDLE_SOURCE = 'OBJECT IDLETIME (a lower bound: time since last access)';

/** One run of the audit: scans node by node, batch by batch, and collects what it finds. */
class KeyAudit {
  private readonly c: Collector;
  private readonly spaces: readonly Keyspace[];
  private readonly prefixes: string[];
  private inspector: Inspector | undefined;
  totalKeys: number | null = 0;

  constructor(
    spaces: Keyspace | readonly Keyspace[],
    private readonly o: CheckedOptions,
  ) {
    this.spaces = Array.isArray(spaces) ? (spaces as readonly Keyspace[]) : [spaces as Keyspace];
    this.prefixes = [...new Set(this.spaces.flatMap((s) => s.list().map((d) => `${d.prefix}:`)))];
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

  /** Scans every node: SCAN batch, inspect, report progress, pause. */
  async scanAll(nodes: readonly Redis[], cluster: boolean): Promise<void> {
    const inspector = new Inspector((name) => this.match(name), this.o.readers, this.signal);
    this.inspector = inspector;
    const [only] = nodes;
    if (!cluster && only) {
      const opening = RespPipe.open(only);
      try {
        inspector.pipe = await abortable(opening, this.signal);
      } catch (err) {
        // Stopped while it was opening: close it once open, or it would keep the process alive.
        opening.then(
          (pipe) => pipe.close(),
          () => undefined,
        );
        if (err instanceof Abort) throw err;
        // No second connection (a connection limit?): the slower ways still work.
      }
    }
    try {
      for (const node of nodes) await this.scan(node, inspector);
    } finally {
      inspector.pipe?.close();
    }
  }

  /**
   * Scans one node to the end. SCAN may return a key twice (when Redis resizes its table during the
   * scan); such a key is counted twice rather than remembered, which would cost memory per key.
   */
  private async scan(node: Redis, inspector: Inspector): Promise<void> {
    const scanFrom = (cursor: string): Promise<[Buffer, Buffer[]]> => {
      // scanBuffer, not callBuffer('SCAN'): call() loses its command name on a connection with
      // enableAutoPipelining (ioredis), which an app's connection has.
      return this.o.match
        ? node.scanBuffer(cursor, 'MATCH', this.o.match, 'COUNT', this.o.count)
        : node.scanBuffer(cursor, 'COUNT', this.o.count);
    };
    // Unpaced, two batches are in flight: Redis inspects one while this process takes the other's
    // results in, and the next SCAN travels meanwhile. Paced, one batch at a time.
    const depth = this.o.paceMs > 0 ? 1 : 2;
    const inFlight: Promise<Inspected[]>[] = [];
    const takeOne = async (): Promise<void> => {
      for (const k of await (inFlight.shift() as Promise<Inspected[]>)) this.take(k);
      this.o.onProgress?.({
        scanned: this.c.scanned,
        totalKeys: this.o.match ? null : this.totalKeys,
        findings: this.c.findingCount(),
      });
    };
    let cursor = '0';
    try {
      do {
        if (this.signal?.aborted) throw new Abort();
        let batch: [Buffer, Buffer[]];
        try {
          batch = await abortable(scanFrom(cursor), this.signal);
        } catch (err) {
          if (err instanceof Abort) throw err;
          throw redisFailure('SCAN', err instanceof Error ? err : new Error(String(err)));
        }
        cursor = batch[0].toString();
        const p = batch[1].length ? inspector.inspect(node, batch[1]) : Promise.resolve([]);
        p.catch(() => undefined); // awaited in takeOne; never unhandled if the audit stops first
        inFlight.push(p);
        while (inFlight.length >= depth) await takeOne();
        if (cursor !== '0' && this.o.paceMs > 0) {
          try {
            await sleep(this.o.paceMs, undefined, this.signal ? { signal: this.signal } : {});
          } catch {
            throw new Abort();
          }
        }
      } while (cursor !== '0');
      while (inFlight.length) await takeOne();
    } finally {
      inFlight.length = 0;
    }
  }

  private match(name: string): KeyDef | undefined {
    // Most keys of a shared Redis are someone else's: skip the patterns when no prefix fits.
    if (!this.prefixes.some((p) => name.startsWith(p))) return undefined;
    for (const s of this.spaces) {
      const d = s.match(name);
      if (d) return d;
    }
    return undefined;
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

  /** Classifies one inspected key and dates it. */
  private take(k: Inspected): void {
    this.classify(k);
    const meta = k.head && k.reader ? k.reader.parse(k.head.toString('utf8')) : undefined;
    if (!meta) {
      const source =
        k.reader && k.type === 'string'
          ? 'OBJECT IDLETIME (a lower bound: the value carried no metadata)'
          : IDLE_SOURCE;
      this.ageFromIdle(k, source);
      return;
    }
    if (k.def && meta.version !== undefined) this.c.version(k.def, meta.version);
    const ageMs = Math.max(0, Date.now() - meta.createdAt);
    if (!this.c.wantsAge(ageMs)) return;
    const { key, keyBytes, id, owner } = this.base(k);
    this.c.age({
      key,
      keyBytes,
      id,
      owner,
      ageMs,
      basis: 'metadata',
      createdAt: meta.createdAt,
      writer: meta.writer ?? null,
      version: meta.version ?? null,
      source: (k.reader as CreationReader).source,
    });
  }

  /** Counts the key for its owner and records every finding it has. */
  private classify(k: Inspected): void {
    const c = this.c;
    c.scanned++;
    c.tally(k.def?.spec.owner ?? UNOWNED, k.def, k.bytes, k.ttlMs);
    let base: Omit<KeyFinding, 'kind' | 'detail'> | undefined;
    // A finding too small to be among the largest kept is only counted: no object, no text.
    const add = (kind: FindingKind, detail: () => string): void => {
      if (!c.wants(k.bytes)) return c.count(kind);
      base ??= this.base(k);
      c.add({ ...base, kind, detail: detail() });
    };
    if (k.name.length > this.o.maxKeyBytes) {
      add(
        'long-name',
        () =>
          `key name is ${k.name.length} bytes (limit ${this.o.maxKeyBytes}): a payload in the name? Put data in the value or a store, and a bounded id or hash in the name (keyPart).`,
      );
    }
    if (!k.def) {
      // No declaration: no owner, and no TTL or budget of its own, so the defaults apply.
      const text = k.text;
      add('unowned', () => this.unownedDetail(text));
      if (k.ttlMs === null) {
        add(
          'no-ttl',
          () =>
            'undeclared and without a TTL: it will never expire, and nobody is known to delete it. Give it a TTL, or declare it with the reason it has none',
        );
      }
      if (k.bytes !== null && k.bytes > this.o.unownedMaxBytes) {
        add(
          'over-budget',
          () =>
            `uses ${k.bytes} bytes; an undeclared key has the default budget of ${this.o.unownedMaxBytes} bytes (unownedMaxBytes, --unowned-max-bytes). Declare it with its own maxBytes, or find who writes it`,
        );
      }
      c.family(familyOf(text, k.name.length, this.o.maxKeyBytes), k.bytes, () =>
        displayKey(k.name, this.o.fullNames),
      );
      return;
    }
    const s = k.def.spec;
    if (k.type !== s.type) add('wrong-type', () => `declared ${s.type} ("${s.id}"), found ${k.type}`);
    if (s.ttlMs !== undefined && k.ttlMs === null) {
      add(
        'no-ttl',
        () =>
          `"${s.id}" is declared with a TTL of ${s.ttlMs} ms, but this key has none and will never expire`,
      );
    }
    // A budget is set for the declared type; a key of another type is reported as that only.
    if (k.type === s.type && k.bytes !== null && k.bytes > s.maxBytes) {
      add('over-budget', () => `uses ${k.bytes} bytes; "${s.id}" has a budget of ${s.maxBytes} bytes`);
    }
  }

  /** Why a key has no owner, with a hint when it looks like a declared key of another version. */
  private unownedDetail(name: string): string {
    if (this.prefixes.some((p) => name.startsWith(p))) {
      for (const { def, loose } of this.looseDefs()) {
        const m = loose.exec(name);
        if (m) {
          return `no declaration matches; looks like "${def.spec.id}" but version v${m[1]} (declared: v${def.nameVersion}) — left over from an old version?`;
        }
      }
    }
    return 'no declaration matches: nobody owns this key. Declare it (app.keyspace.define) or find who writes it';
  }

  private loose: { def: KeyDef; loose: RegExp }[] | undefined;

  /** Each declaration's pattern with any version, made once. */
  private looseDefs(): { def: KeyDef; loose: RegExp }[] {
    return (this.loose ??= this.spaces.flatMap((s) =>
      s.list().map((def) => ({
        def,
        loose: new RegExp(def.regex.source.replace(`:v${def.nameVersion}:`, ':v(\\d+):')),
      })),
    ));
  }

  private ageFromIdle(k: Inspected, source: string): void {
    if (k.idle === null || !this.c.wantsAge(k.idle * 1000)) return;
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
      version: null,
      source,
    });
  }

  report(startedAt: number, complete: boolean): AuditReport {
    const c = this.c;
    const notes: string[] = [];
    if (!complete)
      notes.push(`cancelled after ${c.scanned} keys: the report covers only the keys seen so far`);
    const idle = this.inspector?.idleUnavailable;
    if (idle) {
      notes.push(`idle time unavailable (Redis said "${idle}"), so ages are known only from tasuki metadata`);
    }
    const { findings, omitted } = c.findingList();
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
      findings,
      findingsOmitted: omitted,
      oldest: c.oldest(),
      owners: [...c.owners.values()].sort((a, b) => b.bytes - a.bytes || a.owner.localeCompare(b.owner)),
      declared: [...c.declared.values()].sort((a, b) => b.bytes - a.bytes || a.id.localeCompare(b.id)),
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
  const { nodes, cluster } = scanTargets(redis);
  try {
    await audit.count(nodes);
    await audit.scanAll(nodes, cluster);
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
