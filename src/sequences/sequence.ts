/**
 * Sequences (採番): monotonic ids per name. One contract, three stores: Redis (fast; unique and
 * rising across restarts and failovers thanks to a clock floor, with gaps), PostgreSQL and
 * MySQL/MariaDB (durable; gapless when allocated inside the transaction that uses the ids).
 * See docs/keyspaces.md for the guarantees of each.
 */
import { TasukiError } from '../errors.js';
import { quote } from '../util/options.js';

/** Monotonic ids per name. */
export interface Sequence {
  /** Name of the sequence. */
  readonly name: string;
  /** The next id. */
  next(): Promise<bigint>;
  /** The next `n` ids (a batch, in one round trip), rising. */
  next(n: number): Promise<bigint[]>;
}

/** Most ids one `next(n)` call may allocate. */
export const MAX_BATCH = 1_000_000;

/** Checks a batch size; throws `E_OPTIONS` quoting it. */
export function batchSize(name: string, n: unknown, max = MAX_BATCH): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) {
    throw new TasukiError(
      'E_OPTIONS',
      `sequence ${quote(name)}: next(n) takes an integer n from 1 to ${max}, not ${typeof n === 'number' ? String(n) : quote(n)}`,
    );
  }
  return n;
}

/** The ids `last-n+1 .. last`, rising. */
export function idsEndingAt(last: bigint, n: number): bigint[] {
  const out = new Array<bigint>(n);
  for (let i = 0; i < n; i++) out[i] = last - BigInt(n - 1 - i);
  return out;
}

/** A checked sequence name: what goes into a key name or a table row. */
export function sequenceName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(name)) {
    throw new TasukiError(
      'E_OPTIONS',
      `sequence name ${quote(name)} is invalid: use 1-100 letters, digits or "_.-" (e.g. "invoice" or "order.2026")`,
    );
  }
  return name;
}
