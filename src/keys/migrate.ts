/**
 * `tasuki keys migrate`: rewrites the values of one app keyspace that are at an older format
 * version, in place, through the keyspace's declared migrations — the eager counterpart of the
 * lazy migration on read. SCAN (MATCH the keyspace's names, bounded COUNT), one GET pipeline per
 * batch, a paced pause between batches, a dry run unless told to apply, and a cursor to resume
 * from. Each rewrite is conditional (keyspace_rewrite.lua): a value written since it was read is
 * left alone, and the key keeps its remaining TTL.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisConnection } from '../connection/redis.js';
import { TasukiError } from '../errors.js';
import { keyspaceRewrite, registerScripts, run } from '../scripts/catalogue.js';
import { parseHeader } from './envelope.js';
import type { KeyDef } from './registry.js';

/** Options of {@link migrateKeys}. */
export interface MigrateOptions {
  /** The version to migrate to: must be the keyspace's declared (current) version. */
  to: number;
  /** Write the migrated values (default false: a dry run that only counts). */
  apply?: boolean;
  /** SCAN COUNT per batch (default 200). */
  count?: number;
  /** Pause between batches in ms (default 0). */
  paceMs?: number;
  /** SCAN cursor to start from (a previous run's `cursor`), default `0`. */
  cursor?: string;
  /** Stop after about this many keys (at the end of a batch); `cursor` then says where to resume. */
  limit?: number;
  /** Stops at the end of the current batch. */
  signal?: AbortSignal;
  /** Called after each batch. */
  onProgress?: (report: MigrateReport) => void;
}

/** What a migration run did. */
export interface MigrateReport {
  keyspace: string;
  to: number;
  applied: boolean;
  /** True when SCAN went all the way round; otherwise resume from {@link cursor}. */
  complete: boolean;
  /** SCAN cursor to resume from (`0` when complete). */
  cursor: string;
  scanned: number;
  /** Values at an older version (rewritten when applied). */
  older: number;
  /** Values rewritten. */
  migrated: number;
  /** Values changed by someone else between the read and the rewrite (left alone). */
  changed: number;
  /** Values already at the target version, or newer. */
  current: number;
  /** Values with no tasuki envelope. */
  unenveloped: number;
  /** Older values per version. */
  byVersion: Record<string, number>;
  /** Values that could not be migrated (first 20), with why. */
  failures: { key: string; error: string }[];
  failed: number;
}

/** Migrates the values of `def` (an app keyspace declaration) to `options.to`; see the module comment. */
export async function migrateKeys(
  redis: RedisConnection,
  def: KeyDef,
  options: MigrateOptions,
): Promise<MigrateReport> {
  const format = def.spec.format;
  if (!format) {
    throw new TasukiError(
      'E_OPTIONS',
      `"${def.spec.id}" is not an app keyspace (its values carry no envelope); keys migrate works on keyspaces made with defineKeyspace`,
    );
  }
  if (options.to !== def.spec.version) {
    throw new TasukiError(
      'E_OPTIONS',
      `keyspace "${def.spec.id}" is at format version ${def.spec.version} in this code, so it can migrate to ${def.spec.version} only, not ${options.to}. Deploy the code that declares v${options.to} (with its migrations) and run it from there.`,
    );
  }
  registerScripts(redis);
  const ttlMs = def.spec.ttlMs ?? 0;
  const r: MigrateReport = {
    keyspace: def.spec.id,
    to: options.to,
    applied: Boolean(options.apply),
    complete: false,
    cursor: options.cursor ?? '0',
    scanned: 0,
    older: 0,
    migrated: 0,
    changed: 0,
    current: 0,
    unenveloped: 0,
    byVersion: {},
    failures: [],
    failed: 0,
  };
  const count = String(options.count ?? 200);
  let cursor = r.cursor;
  do {
    // scanBuffer, not callBuffer('SCAN'): see audit.ts (enableAutoPipelining).
    const [next, keys] = await redis.scanBuffer(cursor, 'MATCH', def.glob(), 'COUNT', count);
    cursor = next.toString();
    const names = keys.map((k) => k.toString('utf8')).filter((k) => def.matches(k));
    const p = redis.pipeline();
    for (const k of names) p.getBuffer(k);
    const values = names.length ? ((await p.exec()) ?? []) : [];
    for (let i = 0; i < names.length; i++) {
      const key = names[i] as string;
      const [err, raw] = values[i] ?? [null, null];
      if (err || !(raw instanceof Buffer)) continue; // gone, or not a string (the audit reports that)
      r.scanned++;
      const header = parseHeader(raw)?.header;
      if (!header) {
        r.unenveloped++;
        continue;
      }
      if (header.version >= options.to) {
        r.current++;
        continue;
      }
      r.older++;
      r.byVersion[header.version] = (r.byVersion[header.version] ?? 0) + 1;
      let upgraded: Buffer | undefined;
      try {
        upgraded = await format.upgrade(raw);
      } catch (e) {
        r.failed++;
        if (r.failures.length < 20)
          r.failures.push({ key, error: e instanceof Error ? e.message : String(e) });
        continue;
      }
      if (!upgraded || !options.apply) continue;
      const done = await run(
        redis,
        keyspaceRewrite({ value: key }, { expected: raw, value: upgraded, ttlMs }),
      );
      if (done === 1) r.migrated++;
      else r.changed++;
    }
    r.cursor = cursor;
    options.onProgress?.(r);
    if (cursor === '0') break;
    if (options.signal?.aborted || (options.limit !== undefined && r.scanned >= options.limit)) return r;
    if (options.paceMs) await sleep(options.paceMs);
  } while (cursor !== '0');
  r.complete = true;
  return r;
}
