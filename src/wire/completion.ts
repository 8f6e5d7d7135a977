/**
 * The completion event: one entry per finished batch on a queue's events stream, written by the
 * `finish` script and read by result waiters. Parsed by field name, never by position.
 */
import { EVENT_IDS_FIELD, EVENT_RECORDS_FIELD, fieldValue } from './fields.js';

/** One completion event: the local ids that finished and, for small batches, their records. */
export interface Completion {
  ids: string[];
  /** Encoded records in the order of `ids` (small batches only). */
  records: string[] | undefined;
}

export function parseCompletion(fields: readonly string[]): Completion {
  const ids = fieldValue(fields, EVENT_IDS_FIELD);
  const records = fieldValue(fields, EVENT_RECORDS_FIELD);
  return { ids: ids ? ids.split(' ') : [], records: records === undefined ? undefined : records.split('\n') };
}
