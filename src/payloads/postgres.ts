/**
 * A payload store in PostgreSQL, shared by every host that reaches the database. One table, created
 * by {@link PostgresPayloadStore.migrate} (`tasuki payloads migrate`) or on first use:
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS tasuki_payloads (
 *   ref        text PRIMARY KEY,
 *   data       bytea NOT NULL,
 *   sha256     text NOT NULL,
 *   size       integer NOT NULL,
 *   created_at timestamptz NOT NULL DEFAULT now(),
 *   expires_at timestamptz NOT NULL
 * );
 * CREATE INDEX IF NOT EXISTS tasuki_payloads_expires_at ON tasuki_payloads (expires_at);
 * ```
 *
 * The `pg` package is an optional peer dependency: it is imported only when the store is built from
 * a connection string (pass your own `pg.Pool` and it is never imported).
 */
import { TasukiError } from '../errors.js';
import { quote } from '../util/quote.js';
import { checkRef } from './refs.js';
import type { NewPayload, PayloadStore } from './store.js';

/** What the store needs of a database handle: a `pg` `Pool` (or anything with this `query`). */
export interface PayloadSqlQueryable {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>;
}

/** Options of {@link PostgresPayloadStore}: a pool, or a connection string to make one from. */
export interface PostgresPayloadStoreOptions {
  /** A `pg.Pool` (the store never ends a pool it was given). */
  pool?: PayloadSqlQueryable;
  /** `postgres://...` URL; the store makes (and on close ends) its own pool. */
  connectionString?: string;
  /** Table name, optionally `schema.table` (default `tasuki_payloads`). */
  table?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function tableName(name: string): { sql: string; index: string } {
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw new TasukiError(
      'E_CONFIG',
      `payload table ${quote(name)} is not a plain SQL name (letters, digits, _; optionally schema.table)`,
    );
  }
  const last = parts[parts.length - 1] as string;
  return { sql: parts.map((p) => `"${p}"`).join('.'), index: `"${last}_expires_at"` };
}

/** A pool end-able by the store (one it made itself). */
interface OwnedPool extends PayloadSqlQueryable {
  end(): Promise<void>;
}

async function makePool(connectionString: string): Promise<OwnedPool> {
  let pg: typeof import('pg');
  try {
    pg = await import('pg');
  } catch (err) {
    throw new TasukiError(
      'E_CONFIG',
      "the PostgreSQL payload store needs the 'pg' package, an optional peer dependency of tasuki that is " +
        "not installed. Install it with 'npm install pg'.",
      { cause: err },
    );
  }
  const pool = new pg.default.Pool({ connectionString, max: 10 });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** Payloads in a PostgreSQL table (see the module comment for its definition). */
export class PostgresPayloadStore implements PayloadStore {
  readonly description: string;
  /** The table, quoted. */
  private readonly table: string;
  private readonly index: string;
  private readonly given: PayloadSqlQueryable | undefined;
  private readonly connectionString: string | undefined;
  private pool: Promise<OwnedPool> | undefined;
  private migrated: Promise<void> | undefined;

  constructor(options: PostgresPayloadStoreOptions) {
    if (!options.pool === !options.connectionString) {
      throw new TasukiError(
        'E_CONFIG',
        'PostgresPayloadStore takes { pool } (a pg.Pool) or { connectionString } (postgres://...), one of them',
      );
    }
    const t = tableName(options.table ?? 'tasuki_payloads');
    this.table = t.sql;
    this.index = t.index;
    this.given = options.pool;
    this.connectionString = options.connectionString;
    this.description = `postgres table ${options.table ?? 'tasuki_payloads'}`;
  }

  private db(): Promise<PayloadSqlQueryable> {
    if (this.given) return Promise.resolve(this.given);
    this.pool ??= makePool(this.connectionString as string).catch((err: unknown) => {
      this.pool = undefined;
      throw err;
    });
    return this.pool;
  }

  /** Creates the table and its expiry index if they do not exist. Idempotent; safe to run concurrently. */
  async migrate(): Promise<void> {
    const db = await this.db();
    await db.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (
         ref text PRIMARY KEY,
         data bytea NOT NULL,
         sha256 text NOT NULL,
         size integer NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now(),
         expires_at timestamptz NOT NULL
       )`,
    );
    await db.query(`CREATE INDEX IF NOT EXISTS ${this.index} ON ${this.table} (expires_at)`);
  }

  /** The table exists: migrated once per store object before the first write or read. */
  private async ready(): Promise<PayloadSqlQueryable> {
    this.migrated ??= this.migrate().catch((err: unknown) => {
      this.migrated = undefined;
      throw err;
    });
    await this.migrated;
    return this.db();
  }

  put(payload: NewPayload): Promise<void> {
    return this.putMany([payload]);
  }

  /** One INSERT for the whole batch: all or none. */
  async putMany(payloads: readonly NewPayload[]): Promise<void> {
    if (payloads.length === 0) return;
    for (const p of payloads) checkRef(p.ref);
    const db = await this.ready();
    await db.query(
      `INSERT INTO ${this.table} (ref, data, sha256, size, expires_at)
       SELECT ref, data, sha256, size, to_timestamp(expires_ms / 1000.0)
       FROM unnest($1::text[], $2::bytea[], $3::text[], $4::int[], $5::float8[])
         AS t(ref, data, sha256, size, expires_ms)`,
      [
        payloads.map((p) => p.ref),
        payloads.map((p) => p.data),
        payloads.map((p) => p.sha256),
        payloads.map((p) => p.data.length),
        payloads.map((p) => p.expiresAt),
      ],
    );
  }

  async get(ref: string): Promise<Buffer | null> {
    checkRef(ref);
    const db = await this.ready();
    const { rows } = await db.query(`SELECT data FROM ${this.table} WHERE ref = $1`, [ref]);
    const row = rows[0] as { data: Buffer } | undefined;
    return row ? row.data : null;
  }

  async delete(refs: readonly string[]): Promise<number> {
    if (refs.length === 0) return 0;
    for (const ref of refs) checkRef(ref);
    const db = await this.ready();
    const { rowCount } = await db.query(`DELETE FROM ${this.table} WHERE ref = ANY($1::text[])`, [refs]);
    return rowCount ?? 0;
  }

  async gc(now = Date.now()): Promise<number> {
    const db = await this.ready();
    let deleted = 0;
    // In batches, so a big backlog does not hold one long transaction.
    for (;;) {
      const { rowCount } = await db.query(
        `DELETE FROM ${this.table} WHERE ref IN (
           SELECT ref FROM ${this.table} WHERE expires_at <= to_timestamp($1 / 1000.0) LIMIT 5000)`,
        [now],
      );
      deleted += rowCount ?? 0;
      if ((rowCount ?? 0) < 5000) return deleted;
    }
  }

  /** Ends the pool the store made from a connection string (a given pool is the caller's). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.migrated = undefined;
    if (pool) await (await pool.catch(() => undefined))?.end();
  }
}
