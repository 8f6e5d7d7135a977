/**
 * What the key audit keeps while it scans: counts per finding kind, the largest findings, the
 * oldest keys, totals per owner, per declaration and per family of undeclared names. Everything is
 * bounded whatever the number of keys (top-N lists, one total per owner, declaration or family,
 * families capped), so a million-key audit needs no more memory than a thousand-key one.
 */
import {
  FINDING_KINDS,
  type DeclaredTotal,
  type FindingKind,
  type KeyFinding,
  type OldestKey,
  type OwnerTotal,
  type UnownedFamily,
} from './findings.js';
import type { KeyDef } from './registry.js';

const MAX_FAMILIES = 10_000;

/** The `limit` items with the highest score seen; adding is amortised O(log limit). */
export class TopN<T> {
  private items: { item: T; score: number }[] = [];
  private floor = -Infinity;

  constructor(private readonly limit: number) {}

  /** True when an item of this score could be among the top (ties with the lowest kept are not). */
  wants(score: number): boolean {
    return this.limit > 0 && (this.items.length < this.limit || score > this.floor);
  }

  /** Offers an item; false when it cannot be among the top. */
  add(item: T, score: number): boolean {
    if (this.limit === 0 || (this.items.length >= this.limit && score <= this.floor)) return false;
    this.items.push({ item, score });
    if (this.items.length >= this.limit * 2) this.trim();
    return true;
  }

  private trim(): void {
    this.items.sort((a, b) => b.score - a.score);
    if (this.items.length > this.limit) this.items.length = this.limit;
    if (this.items.length >= this.limit) this.floor = this.items[this.items.length - 1]?.score ?? -Infinity;
  }

  /** The kept items, highest score first. */
  list(): T[] {
    this.trim();
    return this.items.map((x) => x.item);
  }
}

/** Collects findings, oldest keys and totals as batches come in. */
export class Collector {
  readonly counts = Object.fromEntries(FINDING_KINDS.map((k) => [k, 0])) as Record<FindingKind, number>;
  private readonly findings: TopN<KeyFinding>;
  private readonly oldestKeys: TopN<OldestKey>;
  readonly owners = new Map<string, OwnerTotal>();
  readonly declared = new Map<string, DeclaredTotal>();
  readonly families = new Map<string, UnownedFamily>();
  scanned = 0;
  private total = 0;

  constructor(
    private readonly maxFindings: number,
    limitOldest: number,
  ) {
    this.findings = new TopN(maxFindings);
    this.oldestKeys = new TopN(limitOldest);
  }

  /** True when a finding of a key of this size could be among the kept ones. */
  wants(bytes: number | null): boolean {
    return this.findings.wants(bytes ?? 0);
  }

  /** Counts a finding that is not kept. */
  count(kind: FindingKind): void {
    this.counts[kind]++;
    this.total++;
  }

  add(f: KeyFinding): void {
    this.counts[f.kind]++;
    this.total++;
    // Ties keep the first seen (a stable order for small audits): a tiny tie-breaker by arrival.
    this.findings.add(f, (f.bytes ?? 0) - this.total * 1e-9);
  }

  /** Counts a key for its owner and its declaration. */
  tally(owner: string, def: KeyDef | undefined, bytes: number | null, ttlMs: number | null): void {
    const t = this.owners.get(owner) ?? { owner, keys: 0, bytes: 0 };
    t.keys++;
    t.bytes += bytes ?? 0;
    this.owners.set(owner, t);
    if (!def) return;
    let d = this.declared.get(def.spec.id);
    if (!d) {
      d = { id: def.spec.id, owner: def.spec.owner, keys: 0, bytes: 0, noTtl: 0, versions: {} };
      this.declared.set(def.spec.id, d);
    }
    d.keys++;
    d.bytes += bytes ?? 0;
    if (ttlMs === null) d.noTtl++;
  }

  /** Counts a value's format version for its declaration. */
  version(def: KeyDef, version: number): void {
    const d = this.declared.get(def.spec.id);
    if (d) d.versions[version] = (d.versions[version] ?? 0) + 1;
  }

  /** True when a key this old could be among the oldest kept. */
  wantsAge(ageMs: number): boolean {
    return this.oldestKeys.wants(ageMs);
  }

  age(o: OldestKey): void {
    this.oldestKeys.add(o, o.ageMs);
  }

  family(pattern: string, bytes: number | null, example: () => string): void {
    let f = this.families.get(pattern);
    if (!f) {
      // Bound the memory of a Redis full of oddly named keys: past the cap, families merge.
      if (this.families.size >= MAX_FAMILIES) return this.family('(other)', bytes, example);
      f = { pattern, keys: 0, bytes: 0, example: example() };
      this.families.set(pattern, f);
    }
    f.keys++;
    f.bytes += bytes ?? 0;
  }

  findingCount(): number {
    return this.total;
  }

  /** The kept findings, largest first, and how many were left out. */
  findingList(): { findings: KeyFinding[]; omitted: number } {
    const findings = this.findings.list();
    return { findings, omitted: this.total - findings.length };
  }

  oldest(): OldestKey[] {
    return this.oldestKeys.list();
  }
}
