/**
 * Creation time of keys. Redis keeps none, so tasuki writes it into the values that outlive a task
 * (a task record carries `worker` and `finishedAt`), and the audit reads it back from the head of
 * the value with a bounded GETRANGE. Apps can add readers for their own keys.
 */
import { MAX_HEADER_BYTES, parseHeaderText } from './envelope.js';
import type { KeyDef } from './registry.js';

/** Creation metadata read from a value. */
export interface CreationMetadata {
  createdAt: number;
  writer?: string | undefined;
  /** Format version of the value, when its metadata says (app keyspace envelopes do). */
  version?: number | undefined;
}

/**
 * Reads who wrote a string value and when from the head of the value (GETRANGE 0..headBytes-1, so
 * the audit never pulls a large value across the network).
 */
export interface CreationReader {
  /** Bytes read from the start of the value. */
  headBytes: number;
  /** Where the time comes from, in words (shown in the report). */
  source: string;
  /** Parses the head; `undefined` when it holds no metadata. */
  parse(head: string): CreationMetadata | undefined;
}

/**
 * Readers for tasuki's own long-lived values, by declaration id. A task record (JSON) begins with
 * `state, task, attempt, worker, startedAt, finishedAt` before its result, so its head carries who
 * wrote it and when. An idempotency key holds a task id whose first part is the enqueue time in ms.
 */
export const TASUKI_CREATION_READERS: Readonly<Record<string, CreationReader>> = Object.freeze({
  'task.result': {
    headBytes: 1024,
    source: 'finishedAt of the task record',
    parse(head: string): CreationMetadata | undefined {
      const at = /"finishedAt":(\d{1,16})[,}]/.exec(head);
      if (!at) return undefined;
      const w = /"worker":("(?:[^"\\]|\\.){0,512}")/.exec(head);
      let writer: string | undefined;
      try {
        writer = w ? (JSON.parse(w[1] as string) as string) : undefined;
      } catch {
        writer = undefined;
      }
      return { createdAt: Number(at[1]), writer };
    },
  },
  'task.idempotency': {
    headBytes: 160,
    source: 'enqueue time in the task id it holds',
    parse(head: string): CreationMetadata | undefined {
      const m = /^(\d{10,16})-[0-9a-z]+@/.exec(head);
      return m ? { createdAt: Number(m[1]) } : undefined;
    },
  },
});

/** Reads the envelope every app keyspace value starts with (src/keys/envelope.ts). */
export const ENVELOPE_READER: CreationReader = Object.freeze({
  headBytes: MAX_HEADER_BYTES,
  source: 'the value envelope (writer, written-at, format version)',
  parse(head: string): CreationMetadata | undefined {
    const h = parseHeaderText(head);
    return h ? { createdAt: h.writtenAt, writer: h.writer, version: h.version } : undefined;
  },
});

/**
 * The reader for a declaration: the app's reader for its id if given, else the envelope reader for
 * app keyspaces, else tasuki's for tasuki's own keys (owner `tasuki/...`), else none.
 */
export function creationReader(
  def: KeyDef,
  readers: Readonly<Record<string, CreationReader>> = {},
): CreationReader | undefined {
  return (
    readers[def.spec.id] ??
    (def.spec.format ? ENVELOPE_READER : undefined) ??
    (def.spec.owner.startsWith('tasuki') ? TASUKI_CREATION_READERS[def.spec.id] : undefined)
  );
}
