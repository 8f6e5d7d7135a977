/**
 * Durable sequences in a SQL table (one row per name), for PostgreSQL and MySQL/MariaDB: the
 * source's 採番 page. One statement allocates a batch under the row's lock, so concurrent callers
 * serialize on the row; inside the caller's own transaction the ids commit or roll back with it
 * (gapless), outside one each call commits at once.
 */
import { TasukiError } from '../errors.js';
import type { SqlQueryable } from '../lock/fence-postgres.js';
import type { MySqlQueryable } from '../lock/fence-mysql.js';
import { batchSize, idsEndingAt, sequenceName, type Sequence } from './sequence.js';

/** Default table of SQL sequences. */
export const SEQUENCE_TABLE = 'tasuki_sequences';

function tableName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/.test(name)) {
    throw new TasukiError(
      'E_OPTIONS',
      `sequence table "${name}" must be "table" or "schema.table" (letters, digits, _)`,
    );
  }
  return name;
}

/** Options of the SQL sequences. */
export interface SqlSequenceOptions {
  /** Table of the sequences, `table` or `schema.table` (default `tasuki_sequences`). */
  table?: string;
}

/** A durable sequence in PostgreSQL. Pass a `PoolClient` inside a transaction for gapless ids. */
export class PostgresSequence implements Sequence {
  readonly name: string;
  private readonly table: string;

  constructor(
    private readonly db: SqlQueryable,
    name: string,
    options: SqlSequenceOptions = {},
  ) {
    this.name = sequenceName(name);
    this.table = tableName(options.table ?? SEQUENCE_TABLE);
  }

  /** Creates the table if it is missing (or create it in a migration: see {@link createSql}). */
  static async ensureTable(db: SqlQueryable, table = SEQUENCE_TABLE): Promise<void> {
    await db.query(PostgresSequence.createSql(table));
  }

  /** `CREATE TABLE IF NOT EXISTS` for the sequences table. */
  static createSql(table = SEQUENCE_TABLE): string {
    return `CREATE TABLE IF NOT EXISTS ${tableName(table)} (name varchar(100) PRIMARY KEY, value bigint NOT NULL)`;
  }

  next(): Promise<bigint>;
  next(n: number): Promise<bigint[]>;
  async next(n?: number): Promise<bigint | bigint[]> {
    const count = n === undefined ? 1 : batchSize(this.name, n);
    const r = await this.db.query(
      `INSERT INTO ${this.table} AS s (name, value) VALUES ($1, $2) ` +
        'ON CONFLICT (name) DO UPDATE SET value = s.value + EXCLUDED.value RETURNING value::text AS value',
      [this.name, count],
    );
    const last = BigInt((r.rows[0] as { value: string }).value);
    const ids = idsEndingAt(last, count);
    return n === undefined ? (ids[0] as bigint) : ids;
  }
}

/**
 * A durable sequence in MySQL or MariaDB (InnoDB), the classic `LAST_INSERT_ID(value + n)` way: one
 * statement, whose result carries the new value, so it works on a pool. Pass a connection inside
 * a transaction for gapless ids.
 */
export class MySqlSequence implements Sequence {
  readonly name: string;
  private readonly table: string;

  constructor(
    private readonly db: MySqlQueryable,
    name: string,
    options: SqlSequenceOptions = {},
  ) {
    this.name = sequenceName(name);
    this.table = tableName(options.table ?? SEQUENCE_TABLE);
  }

  /** Creates the table if it is missing. */
  static async ensureTable(db: MySqlQueryable, table = SEQUENCE_TABLE): Promise<void> {
    await db.query(MySqlSequence.createSql(table));
  }

  /** `CREATE TABLE IF NOT EXISTS` for the sequences table (InnoDB: row locks, transactions). */
  static createSql(table = SEQUENCE_TABLE): string {
    return `CREATE TABLE IF NOT EXISTS ${tableName(table)} (name VARCHAR(100) NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB`;
  }

  next(): Promise<bigint>;
  next(n: number): Promise<bigint[]>;
  async next(n?: number): Promise<bigint | bigint[]> {
    const count = n === undefined ? 1 : batchSize(this.name, n);
    // LAST_INSERT_ID(expr) makes the statement's insert id the new value; a first insert has none (0).
    const [res] = await this.db.query(
      `INSERT INTO ${this.table} (name, value) VALUES (?, ?) ` +
        'ON DUPLICATE KEY UPDATE value = LAST_INSERT_ID(value + VALUES(value))',
      [this.name, count],
    );
    const insertId = (res as { insertId?: number | string | bigint }).insertId;
    const last = insertId === undefined || BigInt(insertId) === 0n ? BigInt(count) : BigInt(insertId);
    const ids = idsEndingAt(last, count);
    return n === undefined ? (ids[0] as bigint) : ids;
  }
}
