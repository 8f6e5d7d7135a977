import { TasukiError } from '../errors.js';
import { StaleTokenError } from './errors.js';
import { rowKey, tokenText } from './token.js';

/**
 * What the PostgreSQL helpers need: a `pg` `Pool`, `PoolClient` or `Client` (anything with `query`).
 * Use a `PoolClient` inside your own transaction to fence several statements at once.
 */
export interface SqlQueryable {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>;
}

/** A fenced row write: see {@link fencedUpsert}. */
export interface FencedRowWrite {
  /** Table name, optionally `schema.table`; letters, digits and `_` only. */
  table: string;
  /** Columns and values that identify the row (a primary key or unique constraint on them). */
  key: Record<string, unknown>;
  /** Columns to write and their values. */
  values: Record<string, unknown>;
  /** The writer's fencing token (`lock.token`). */
  token: bigint;
  /** `bigint` column holding the token of the row's last write (default `fence`). */
  fenceColumn?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function ident(name: string, what: string): string {
  if (!IDENT.test(name)) {
    throw new TasukiError(
      'E_OPTIONS',
      `${what} "${name}" is not a plain SQL identifier (letters, digits, _)`,
    );
  }
  return `"${name}"`;
}

function table(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2)
    throw new TasukiError('E_OPTIONS', `table "${name}" must be "table" or "schema.table"`);
  return parts.map((p) => ident(p, 'table')).join('.');
}

function plan(w: FencedRowWrite): {
  tbl: string;
  fence: string;
  keyCols: string[];
  keyVals: unknown[];
  token: string;
} {
  const token = tokenText(w.token);
  const keyEntries = rowKey(w);
  return {
    tbl: table(w.table),
    fence: ident(w.fenceColumn ?? 'fence', 'fence column'),
    keyCols: keyEntries.map(([c]) => ident(c, 'key column')),
    keyVals: keyEntries.map(([, v]) => v),
    token,
  };
}

async function stale(
  db: SqlQueryable,
  w: FencedRowWrite,
  p: ReturnType<typeof plan>,
): Promise<StaleTokenError> {
  const where = p.keyCols.map((c, i) => `${c} = $${i + 1}`).join(' AND ');
  const found = await db.query(`SELECT ${p.fence}::text AS fence FROM ${p.tbl} WHERE ${where}`, p.keyVals);
  const row = found.rows[0] as { fence: string | null } | undefined;
  const current = row?.fence != null ? BigInt(row.fence) : undefined;
  return new StaleTokenError(`${w.table} row ${JSON.stringify(w.key)}`, w.token, current);
}

/**
 * Inserts or updates one row only if `token` is strictly greater than the token stored with it
 * (`INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE fence < token`, one statement, so concurrent
 * writers serialize on the row). A stale token throws {@link StaleTokenError} and changes nothing.
 * The comparison is strict: with `<=` two holders of the same token could both write.
 */
export async function fencedUpsert(db: SqlQueryable, w: FencedRowWrite): Promise<void> {
  const p = plan(w);
  const valEntries = Object.entries(w.values);
  const valCols = valEntries.map(([c]) => ident(c, 'column'));
  const cols = [...p.keyCols, ...valCols, p.fence];
  const params = [...p.keyVals, ...valEntries.map(([, v]) => v), p.token];
  const sets = [...valCols, p.fence].map((c) => `${c} = EXCLUDED.${c}`).join(', ');
  const sql =
    `INSERT INTO ${p.tbl} AS cur (${cols.join(', ')}) VALUES (${params.map((_, i) => `$${i + 1}`).join(', ')}) ` +
    `ON CONFLICT (${p.keyCols.join(', ')}) DO UPDATE SET ${sets} ` +
    `WHERE cur.${p.fence} IS NULL OR cur.${p.fence} < EXCLUDED.${p.fence}`;
  const r = await db.query(sql, params);
  if (r.rowCount === 1) return;
  throw await stale(db, w, p);
}

/**
 * Updates one existing row only if `token` is strictly greater than its stored token
 * (`UPDATE ... SET ..., fence = token WHERE key AND fence < token`). Throws {@link StaleTokenError}
 * for a stale token and `E_NOT_FOUND` when no row has that key.
 */
export async function fencedUpdate(db: SqlQueryable, w: FencedRowWrite): Promise<void> {
  const p = plan(w);
  const valEntries = Object.entries(w.values);
  const params = [...p.keyVals, ...valEntries.map(([, v]) => v), p.token];
  const n = p.keyCols.length;
  const sets = valEntries.map(([c], i) => `${ident(c, 'column')} = $${n + i + 1}`);
  const tokenParam = `$${params.length}`;
  sets.push(`${p.fence} = ${tokenParam}`);
  const where = p.keyCols.map((c, i) => `${c} = $${i + 1}`).join(' AND ');
  const sql =
    `UPDATE ${p.tbl} SET ${sets.join(', ')} ` +
    `WHERE ${where} AND (${p.fence} IS NULL OR ${p.fence} < ${tokenParam}::bigint)`;
  const r = await db.query(sql, params);
  if (r.rowCount === 1) return;
  const err = await stale(db, w, p);
  if (err.current === undefined) {
    const exists = await db.query(`SELECT 1 FROM ${p.tbl} WHERE ${where}`, p.keyVals);
    if (exists.rows.length === 0) {
      throw new TasukiError(
        'E_NOT_FOUND',
        `fenced update of ${w.table}: no row with key ${JSON.stringify(w.key)}`,
      );
    }
  }
  throw err;
}
