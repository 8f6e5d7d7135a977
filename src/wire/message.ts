/**
 * The message codec: what a queue entry carries, encoded compactly so a waiting task costs Redis
 * little more than its arguments. Part of the wire contract (see docs/architecture.md).
 */
import { TasukiError } from '../errors.js';
import { MESSAGE_FIELD, MESSAGE_VERSION } from './fields.js';

/**
 * The message a stream entry carries in its field `m`: a JSON array `[name, args]` or
 * `[name, args, meta]`. Kept short on purpose: a waiting task costs Redis little more than its
 * arguments. A task that runs straight away has no `id` in `meta`: its stream entry id is its id.
 */
export interface TaskMessage {
  /** Task name. */
  name: string;
  /** Arguments as given to `enqueue` (JSON). */
  args: unknown;
  /** Task id when it is not the entry id (delayed tasks, retries). */
  id?: string | undefined;
  /** Attempt number, from 1 (omitted when 1). */
  attempt?: number | undefined;
  /** Do not run after this time (ms since epoch). */
  expiresAt?: number | undefined;
  /**
   * A start slot reserved under the task's rate limits (ms since epoch): the task was held back
   * until then and runs without asking the limits again.
   */
  slot?: number | undefined;
}

interface Meta {
  id?: string;
  n?: number;
  x?: number;
  s?: number;
}

/** Encodes a message; `argsJson` is the already-serialised arguments. */
export function encodeMessage(
  name: string,
  argsJson: string,
  meta: Omit<TaskMessage, 'name' | 'args'> = {},
): string {
  const m: Meta = {};
  if (meta.id !== undefined) m.id = meta.id;
  if (meta.attempt !== undefined && meta.attempt > 1) m.n = meta.attempt;
  if (meta.expiresAt !== undefined) m.x = meta.expiresAt;
  if (meta.slot !== undefined) m.s = meta.slot;
  const head = `[${JSON.stringify(name)},${argsJson}`;
  return m.id === undefined && m.n === undefined && m.x === undefined && m.s === undefined
    ? `${head}]`
    : `${head},${JSON.stringify(m)}]`;
}

/**
 * Re-encodes a decoded message with new meta (a retry's attempt, a hand-back's task id). The one
 * place a message is rebuilt; everything else passes the raw message on untouched.
 */
export function reencodeMessage(msg: TaskMessage, meta: Omit<TaskMessage, 'name' | 'args'>): string {
  return encodeMessage(msg.name, JSON.stringify(msg.args), meta);
}

/** A stream entry written by a newer tasuki, in a message format this version does not know. */
export class NewerFormatError extends TasukiError {
  readonly version: number;

  constructor(version: number) {
    super(
      'E_POISON',
      `message format ${version} is newer than this worker knows (${MESSAGE_VERSION}); ` +
        'left for a newer worker (upgrade this one: a rolling deploy is under way, or finished without it)',
    );
    this.name = 'NewerFormatError';
    this.version = version;
  }
}

/**
 * The raw message of a stream entry's fields. Throws {@link NewerFormatError} when the entry carries
 * only a newer format's field (`m<n>`, n > {@link MESSAGE_VERSION}), {@link PoisonMessageError} when it
 * carries none.
 */
export function messageOf(fields: readonly string[]): string {
  let newer = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name === MESSAGE_FIELD) return fields[i + 1] as string;
    const version = /^m(\d+)$/.exec(name)?.[1];
    if (version !== undefined && Number(version) > MESSAGE_VERSION) newer = Math.max(newer, Number(version));
  }
  if (newer > 0) throw new NewerFormatError(newer);
  throw new PoisonMessageError(`stream entry has no field "${MESSAGE_FIELD}"`);
}

/** A stream entry that is not a valid tasuki message. */
export class PoisonMessageError extends TasukiError {
  constructor(reason: string) {
    super('E_POISON', `undecodable message: ${reason}`);
    this.name = 'PoisonMessageError';
  }
}

const NO_META: Readonly<Record<string, unknown>> = Object.freeze({});

/** Decodes a message; throws {@link PoisonMessageError} saying what is wrong. */
export function decodeMessage(raw: string | undefined): TaskMessage {
  if (raw === undefined) throw new PoisonMessageError(`stream entry has no field "${MESSAGE_FIELD}"`);
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new PoisonMessageError(`not JSON: ${JSON.stringify(raw.slice(0, 80))}`);
  }
  if (!Array.isArray(v) || v.length < 2 || v.length > 3 || typeof v[0] !== 'string') {
    throw new PoisonMessageError(`expected [name, args, meta?], got ${JSON.stringify(raw.slice(0, 80))}`);
  }
  const meta: unknown = v[2] ?? NO_META;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new PoisonMessageError('meta is not an object');
  }
  const m = meta as Record<string, unknown>;
  if (m.id !== undefined && typeof m.id !== 'string') throw new PoisonMessageError('meta.id is not a string');
  if (m.n !== undefined && !(Number.isInteger(m.n) && (m.n as number) >= 1)) {
    throw new PoisonMessageError('meta.n (attempt) is not a positive integer');
  }
  if (m.x !== undefined && typeof m.x !== 'number')
    throw new PoisonMessageError('meta.x (expiry) is not a number');
  if (m.s !== undefined && typeof m.s !== 'number')
    throw new PoisonMessageError('meta.s (rate-limit slot) is not a number');
  return {
    name: v[0],
    args: v[1],
    id: m.id,
    attempt: (m.n as number | undefined) ?? 1,
    expiresAt: m.x,
    slot: m.s,
  };
}
