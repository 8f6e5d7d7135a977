/**
 * Fenced row writes on MySQL and MariaDB (InnoDB), the database of the source's 採番 and deadlock
 * pages: a write carries the lock's fencing token and is refused when the row holds a token as new
 * or newer. The same contract as the PostgreSQL helpers (fence-postgres.ts), in MySQL's SQL.
 */
import { TasukiError } from '../errors.js';
import type { FencedRowWrite } from './fence-postgres.js';
import { StaleTokenError } from './errors.js';
import { rowKey, tokenText } from './token.js';

/**
 * What the MySQL helpers need: a `mysql2/promise` `Pool`, `PoolConnection` or `Connection`
 * (anything whose `query` resolves `[result, fields]`). Use a connection inside your own
 * transaction to fence several statements at once.
 */
export interface MySqlQueryable {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function ident(name: string, what: string): string {
  if (!IDENT.test(name)) {
    throw new TasukiError(
      'E_OPTIONS',
      `${what} "${name}" is not a plain SQL identifier (letters, digits, _)`,
    );
  }
  return '`' + name + '`';
}

function table(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2)
    throw new TasukiError('E_OPTIONS', `table "${name}" must be "table" or "database.table"`);
  return parts.map((p) => ident(p, 'table')).join('.');
}

interface Plan {
  tbl: string;
  fence: string;
  keyCols: string[];
  keyVals: unknown[];
  valCols: string[];
  valVals: unknown[];
  token: string;
}

function plan(w: FencedRowWrite): Plan {
  const token = tokenText(w.token);
  const keys = rowKey(w);
  const vals = Object.entries(w.values);
  return {
    tbl: table(w.table),
    fence: ident(w.fenceColumn ?? 'fence', 'fence column'),
    keyCols: keys.map(([c]) => ident(c, 'key column')),
    keyVals: keys.map(([, v]) => v),
    valCols: vals.map(([c]) => ident(c, 'column')),
    valVals: vals.map(([, v]) => v),
    token,
  };
}

function affected(res: unknown): number {
  return Number((res as { affectedRows?: number }).affectedRows ?? 0);
}

/**
 * `UPDATE ... WHERE key AND fence < token`: 1 row when the token is newer. Counted the same with
 * or without the client's FOUND_ROWS flag, since the fence column always changes.
 */
async function update(db: MySqlQueryable, p: Plan): Promise<boolean> {
  const sets = [...p.valCols, p.fence].map((c) => `${c} = ?`).join(', ');
  const where = p.keyCols.map((c) => `${c} = ?`).join(' AND ');
  const [res] = await db.query(
    `UPDATE ${p.tbl} SET ${sets} WHERE ${where} AND (${p.fence} IS NULL OR ${p.fence} < CAST(? AS UNSIGNED))`,
    [...p.valVals, p.token, ...p.keyVals, p.token],
  );
  return affected(res) === 1;
}

async function stale(db: MySqlQueryable, w: FencedRowWrite, p: Plan): Promise<StaleTokenError | undefined> {
  const where = p.keyCols.map((c) => `${c} = ?`).join(' AND ');
  const [rows] = await db.query(
    `SELECT CAST(${p.fence} AS CHAR) AS fence FROM ${p.tbl} WHERE ${where}`,
    p.keyVals,
  );
  const row = (rows as { fence: string | null }[])[0];
  if (!row) return undefined;
  return new StaleTokenError(
    `${w.table} row ${JSON.stringify(w.key)}`,
    w.token,
    row.fence != null ? BigInt(row.fence) : undefined,
  );
}

const isDuplicate = (err: unknown): boolean =>
  (err as { errno?: unknown; code?: unknown })?.errno === 1062 ||
  (err as { code?: unknown })?.code === 'ER_DUP_ENTRY';

/**
 * Inserts or updates one row only if `token` is strictly greater than the token stored with it;
 * a stale token throws {@link StaleTokenError} and changes nothing. An UPDATE fenced by the token,
 * else an INSERT; when a concurrent writer inserted the row first (duplicate key) the UPDATE runs
 * again, so the outcome is decided by the row's token whatever the interleaving.
 */
export async function fencedUpsertMySql(db: MySqlQueryable, w: FencedRowWrite): Promise<void> {
  const p = plan(w);
  for (let round = 0; round < 2; round++) {
    if (await update(db, p)) return;
    const err = await stale(db, w, p);
    if (err) throw err;
    const cols = [...p.keyCols, ...p.valCols, p.fence];
    try {
      await db.query(`INSERT INTO ${p.tbl} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, [
        ...p.keyVals,
        ...p.valVals,
        p.token,
      ]);
      return;
    } catch (e) {
      if (!isDuplicate(e)) throw e;
    }
  }
  throw (
    (await stale(db, w, p)) ??
    new StaleTokenError(`${w.table} row ${JSON.stringify(w.key)}`, w.token, undefined)
  );
}

/**
 * Updates one existing row only if `token` is strictly greater than its stored token. Throws
 * {@link StaleTokenError} for a stale token and `E_NOT_FOUND` when no row has that key.
 */
export async function fencedUpdateMySql(db: MySqlQueryable, w: FencedRowWrite): Promise<void> {
  const p = plan(w);
  if (await update(db, p)) return;
  const err = await stale(db, w, p);
  if (err) throw err;
  throw new TasukiError(
    'E_NOT_FOUND',
    `fenced update of ${w.table}: no row with key ${JSON.stringify(w.key)}`,
  );
}
