import { TasukiError } from '../errors.js';
import { quote } from '../util/options.js';
import { keyPart } from './part.js';

/** Redis data type a key holds. */
export type KeyType = 'string' | 'hash' | 'list' | 'set' | 'zset' | 'stream';

/** Names of the `<param>` placeholders in a pattern, as a union of string literals. */
export type PatternParams<S extends string> = S extends `${string}<${infer P}>${infer Rest}`
  ? P | PatternParams<Rest>
  : never;

/**
 * A key declaration: one entry of the catalogue. Every key tasuki writes has one; apps declare
 * theirs the same way with {@link Keyspace.define}.
 */
export interface KeySpec<Pattern extends string = string> {
  /** Stable id, e.g. `queue.stream`. */
  id: string;
  /**
   * Name after `<prefix>:v<version>:`, with `<param>` placeholders filled by {@link KeyDef.key}.
   * Put the part that must share a cluster slot in braces, e.g. `{q:<queue>}:stream`.
   */
  pattern: Pattern;
  /** Who owns the key: the service or part that writes it and may delete it. */
  owner: string;
  /** Version of the value's shape; bump it when the shape changes. */
  version: number;
  type: KeyType;
  /** Default TTL in ms. Exactly one of `ttlMs` and `noTtlReason` must be given. */
  ttlMs?: number;
  /** Why this key has no TTL (e.g. it lives as long as its queue and is emptied as work finishes). */
  noTtlReason?: string;
  /** How values are encoded: `json`, `msgpack`, `text`, `integer`, or a structure's members. */
  codec: string;
  /** Budget for the key's memory (MEMORY USAGE) in bytes; the audit reports keys over it. */
  maxBytes: number;
  /** What the key is for, in one sentence. */
  purpose: string;
  /** Prefix for this key; default the keyspace's prefix. */
  prefix?: string;
  /**
   * Version in the key's name when it differs from {@link version}. App keyspaces keep their name
   * (`v1`) across format versions, which live in each value's envelope and are migrated in place;
   * the name version changes only when old values are no use at all. Default: `version`.
   */
  keyVersion?: number;
  /** For keys whose values carry the tasuki envelope (app keyspaces): how to migrate them. */
  format?: KeyValueFormat;
}

/**
 * How the enveloped values of a declared key are brought to its current format version: set by
 * `defineKeyspace`, used by `tasuki keys migrate`.
 */
export interface KeyValueFormat {
  /**
   * The value re-encoded at the current version (decoded, migrated through the declared
   * migrations, checked against the schema); `undefined` when it is current or newer already.
   * Throws a typed error when it cannot be migrated.
   */
  upgrade(raw: Buffer): Promise<Buffer | undefined>;
}

/** A declared key: builds names for its pattern and knows its catalogue entry. */
export class KeyDef<Pattern extends string = string> {
  readonly spec: Readonly<KeySpec<Pattern>>;
  readonly prefix: string;
  private readonly pieces: string[];
  private readonly params: string[];
  readonly regex: RegExp;
  /** The fixed start of every name of this declaration (prefix, version, text before the first parameter). */
  readonly literal: string;
  /** The version in the key's name (`keyVersion`, else `version`). */
  readonly nameVersion: number;

  constructor(prefix: string, spec: KeySpec<Pattern>) {
    this.spec = Object.freeze({ ...spec });
    this.prefix = spec.prefix ?? prefix;
    const split = spec.pattern.split(/<([A-Za-z][A-Za-z0-9]*)>/);
    this.pieces = split.filter((_, i) => i % 2 === 0);
    this.params = split.filter((_, i) => i % 2 === 1);
    this.nameVersion = spec.keyVersion ?? spec.version;
    const head = `${this.prefix}:v${this.nameVersion}:`;
    const body = this.pieces.map(escapeRegex).join('([^:{}\\s]+)');
    this.regex = new RegExp(`^${escapeRegex(head)}${body}$`);
    this.literal = head + (this.pieces[0] ?? '');
  }

  /** Builds the full key name. User-supplied parts are bounded with {@link keyPart}. */
  key(params: Record<PatternParams<Pattern>, string>): string {
    const values = params as Record<string, string>;
    let out = `${this.prefix}:v${this.nameVersion}:${this.pieces[0] ?? ''}`;
    for (let i = 0; i < this.params.length; i++) {
      const name = this.params[i] as string;
      const v = values[name];
      if (typeof v !== 'string') {
        const got = v === undefined ? 'it is missing' : `got ${quote(v)}`;
        throw new TasukiError(
          'E_KEY',
          `key ${quote(this.spec.id)} needs parameter ${quote(name)} as a string; ${got}`,
        );
      }
      out += keyPart(v) + (this.pieces[i + 1] ?? '');
    }
    return out;
  }

  /** A SCAN MATCH glob for every key of this declaration (parameters as `*`). */
  glob(): string {
    const esc = (t: string): string => t.replace(/[*?[\]\\]/g, '\\$&');
    return `${esc(this.prefix)}:v${this.nameVersion}:${this.pieces.map(esc).join('*')}`;
  }

  /** True when `name` is a key of this declaration. */
  matches(name: string): boolean {
    // The cheap test first: the audit asks this of every key of a shared Redis.
    return name.startsWith(this.literal) && this.regex.test(name);
  }
}

/** A bad declaration value as the message shows it: numbers as they are (NaN stays NaN), else quoted. */
function shown(v: unknown): string {
  return typeof v === 'number' ? String(v) : quote(v);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The keyspace registry: the one place key names are built. Declarations are checked when made
 * (owner, version, TTL or a reason for none, size budget) and can be listed as a catalogue or
 * matched against live keys by the audit.
 */
export class Keyspace {
  readonly prefix: string;
  private readonly defs = new Map<string, KeyDef>();

  constructor(prefix: string) {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) {
      throw new TasukiError(
        'E_KEY',
        `key prefix ${quote(prefix)} is invalid: use 1-32 letters, digits, "_" or "-"`,
      );
    }
    this.prefix = prefix;
  }

  /** Declares a key. Throws `E_KEY` when the declaration is incomplete or its id is taken. */
  define<P extends string>(spec: KeySpec<P>): KeyDef<P> {
    const problems: string[] = [];
    if (typeof spec.id !== 'string' || !/^[a-z][a-z0-9_.-]{0,63}$/i.test(spec.id)) {
      problems.push(
        'id must be a word like "queue.stream" (letters, digits, ".", "_", "-"; up to 64 characters)',
      );
    }
    if (!spec.owner?.trim()) problems.push('owner is required');
    if (!Number.isInteger(spec.version) || spec.version < 1) {
      problems.push(`version must be an integer >= 1, not ${shown(spec.version)}`);
    }
    if (spec.keyVersion !== undefined && !(Number.isInteger(spec.keyVersion) && spec.keyVersion >= 1)) {
      problems.push(`keyVersion must be an integer >= 1, not ${shown(spec.keyVersion)}`);
    }
    const hasTtl = spec.ttlMs !== undefined;
    const hasReason = Boolean(spec.noTtlReason?.trim());
    if (hasTtl === hasReason) problems.push('give exactly one of ttlMs and noTtlReason');
    if (hasTtl && !(Number.isInteger(spec.ttlMs) && (spec.ttlMs as number) > 0)) {
      problems.push(`ttlMs must be a positive integer, not ${shown(spec.ttlMs)}`);
    }
    if (!(Number.isInteger(spec.maxBytes) && spec.maxBytes > 0))
      problems.push(`maxBytes must be a positive integer, not ${shown(spec.maxBytes)}`);
    if (!spec.purpose?.trim()) problems.push('purpose is required');
    if (typeof spec.pattern !== 'string' || /\s/.test(spec.pattern) || spec.pattern === '')
      problems.push(`pattern must be non-empty, without spaces, not ${quote(spec.pattern)}`);
    if (this.defs.has(spec.id)) problems.push(`id ${quote(spec.id)} is already declared`);
    if (problems.length) {
      throw new TasukiError('E_KEY', `key declaration ${quote(spec.id)} is invalid: ${problems.join('; ')}`);
    }
    const def = new KeyDef(this.prefix, spec);
    this.defs.set(spec.id, def);
    return def;
  }

  /** Every declaration, in declaration order. */
  list(): KeyDef[] {
    return [...this.defs.values()];
  }

  /** The declaration with this id, if any. */
  get(id: string): KeyDef | undefined {
    return this.defs.get(id);
  }

  /** The declaration a live key name belongs to, if any. */
  match(name: string): KeyDef | undefined {
    for (const def of this.defs.values()) if (def.matches(name)) return def;
    return undefined;
  }
}
