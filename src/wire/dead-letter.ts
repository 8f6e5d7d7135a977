/**
 * The dead-letter format: what a queue's dead-letter stream holds, JSON in field `d` (DEAD_FIELD).
 * Written by the worker when a task fails for good, read by the dead-letter tools.
 */
import { DEAD_FIELD, fieldValue } from './fields.js';
import type { DeadReason, StoredError } from './record.js';

/** A dead letter as stored. */
export interface StoredDeadLetter {
  /** Task id (local part) and queue. */
  id: string;
  queue: string;
  task: string;
  reason: DeadReason;
  error: StoredError;
  attempts: number;
  failedAt: number;
  /** The raw message, so the task can be retried as it was. */
  message: string;
}

export function encodeDeadLetter(letter: StoredDeadLetter): string {
  return JSON.stringify(letter);
}

/**
 * What can be read of a dead-letter entry's fields; an unreadable entry gives an empty object and
 * the raw text, so the tools still show it.
 */
export function parseDeadLetter(fields: readonly string[]): {
  letter: Partial<StoredDeadLetter>;
  raw: string;
} {
  const raw = fieldValue(fields, DEAD_FIELD) ?? '{}';
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return { letter: value, raw };
    }
  } catch {
    // unreadable: fall through
  }
  return { letter: {}, raw };
}
