/**
 * The key catalogue: every declared key as a row (pattern with prefix, owner, version, TTL or why
 * none, type, codec, size budget, purpose), rendered as a terminal table, JSON or Markdown. It is
 * what `tasuki keys catalogue` prints and what docs/keys.md is generated from, so the documented
 * keys and the keys the code builds cannot drift apart.
 */
import type { KeyDef, Keyspace, KeyType } from './registry.js';

/** One declared key, as the catalogue shows it. */
export interface CatalogueRow {
  /** Stable id of the declaration, e.g. `queue.stream`. */
  id: string;
  /** Full name pattern with prefix and version, e.g. `tsk:v1:{q:<queue>}:stream`. */
  pattern: string;
  owner: string;
  version: number;
  type: KeyType;
  /** Default TTL in ms, or `null` when the key has none (then {@link noTtlReason} says why). */
  ttlMs: number | null;
  noTtlReason: string | null;
  codec: string;
  /** Memory budget (MEMORY USAGE) in bytes. */
  maxBytes: number;
  purpose: string;
}

/** Output formats of the catalogue. */
export type CatalogueFormat = 'table' | 'json' | 'markdown';

/** Every catalogue format, for option parsing. */
export const CATALOGUE_FORMATS: readonly CatalogueFormat[] = ['table', 'json', 'markdown'];

/** The catalogue row of one declaration. */
export function catalogueRow(def: KeyDef): CatalogueRow {
  const s = def.spec;
  return {
    id: s.id,
    pattern: `${def.prefix}:v${def.nameVersion}:${s.pattern}`,
    owner: s.owner,
    version: s.version,
    type: s.type,
    ttlMs: s.ttlMs ?? null,
    noTtlReason: s.ttlMs === undefined ? (s.noTtlReason ?? null) : null,
    codec: s.codec,
    maxBytes: s.maxBytes,
    purpose: s.purpose,
  };
}

/** Rows for every declaration of the keyspaces, in declaration order; an id seen twice is kept once. */
export function catalogueRows(spaces: Keyspace | readonly Keyspace[]): CatalogueRow[] {
  const list = Array.isArray(spaces) ? (spaces as readonly Keyspace[]) : [spaces as Keyspace];
  const seen = new Set<string>();
  const rows: CatalogueRow[] = [];
  for (const space of list) {
    for (const def of space.list()) {
      const row = catalogueRow(def);
      if (seen.has(row.pattern)) continue;
      seen.add(row.pattern);
      rows.push(row);
    }
  }
  return rows;
}

/** A duration in ms as a short human string: `24h`, `90s`, `1d 6h`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const parts: string[] = [];
  let rest = ms;
  for (const [u, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      parts.push(`${n}${u}`);
      rest -= n * size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** A byte count as a short human string: `256 B`, `64 KiB`, `1.5 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 || Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[i] as string}`;
}

function ttlText(r: CatalogueRow): string {
  return r.ttlMs === null ? `none: ${r.noTtlReason ?? ''}` : formatDuration(r.ttlMs);
}

/** Renders the catalogue in a format. Every format ends with a newline. */
export function renderCatalogue(rows: readonly CatalogueRow[], format: CatalogueFormat): string {
  switch (format) {
    case 'json':
      return JSON.stringify(rows, null, 2) + '\n';
    case 'markdown':
      return catalogueMarkdown(rows);
    case 'table':
      return catalogueTable(rows);
  }
}

/** A Markdown table (patterns in code spans, so `<queue>` is not read as HTML). */
export function catalogueMarkdown(rows: readonly CatalogueRow[]): string {
  const cell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const code = (s: string): string => '`' + s.replace(/`/g, "'") + '`';
  const lines = [
    '| Key | Owner | Version | Type | TTL | Codec | Budget | Purpose |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const ttl = r.ttlMs === null ? `none — ${cell(r.noTtlReason ?? '')}` : formatDuration(r.ttlMs);
    lines.push(
      `| ${cell(code(r.pattern))} | ${cell(r.owner)} | ${r.version} | ${r.type} | ${ttl} | ` +
        `${cell(r.codec)} | ${formatBytes(r.maxBytes)} | ${cell(r.purpose)} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Wraps `text` into lines of at most `width` characters, breaking at spaces where possible. */
export function wrap(text: string, width: number): string[] {
  if (text.length <= width) return [text];
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    let w = word;
    while (w.length > width) {
      if (line) {
        out.push(line);
        line = '';
      }
      out.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (!line) line = w;
    else if (line.length + 1 + w.length <= width) line += ' ' + w;
    else {
      out.push(line);
      line = w;
    }
  }
  if (line) out.push(line);
  return out;
}

/**
 * Renders rows as an aligned text table with a header rule. Cells longer than their column's
 * `maxWidth` wrap onto further lines; rows are then separated by a blank line for readability.
 */
export function textTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  maxWidths: readonly number[] = [],
): string {
  const wrapped = rows.map((r) => r.map((c, i) => wrap(c, maxWidths[i] ?? Number.MAX_SAFE_INTEGER)));
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...wrapped.map((r) => Math.max(0, ...(r[i] ?? []).map((l) => l.length)))),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const multi = wrapped.some((r) => r.some((c) => c.length > 1));
  const out = [line(headers), line(widths.map((w) => '-'.repeat(w)))];
  wrapped.forEach((r, ri) => {
    const height = Math.max(1, ...r.map((c) => c.length));
    for (let k = 0; k < height; k++) out.push(line(r.map((c) => c[k] ?? '')));
    if (multi && ri < wrapped.length - 1) out.push('');
  });
  return out.join('\n') + '\n';
}

/** The catalogue as a terminal table; long codec, TTL reason and purpose cells wrap. */
export function catalogueTable(rows: readonly CatalogueRow[]): string {
  return textTable(
    ['KEY', 'OWNER', 'V', 'TYPE', 'TTL', 'CODEC', 'BUDGET', 'PURPOSE'],
    rows.map((r) => [
      r.pattern,
      r.owner,
      String(r.version),
      r.type,
      ttlText(r),
      r.codec,
      formatBytes(r.maxBytes),
      r.purpose,
    ]),
    [60, 24, 3, 6, 36, 36, 10, 48],
  );
}
