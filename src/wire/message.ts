/**
 * The message codec: what a queue entry carries, encoded compactly so a waiting task costs Redis
 * little more than its arguments. Part of the wire contract (see docs/architecture.md).
 */
import { TasukiError } from '../errors.js';
import { CANVAS_TASK, CLAIM_MESSAGE_FIELD, MESSAGE_FIELD, MESSAGE_VERSION } from './fields.js';
import { MAX_PRIORITY } from './priority.js';

/**
 * A claim check: where a task's arguments are kept in the payload store, and what they must hash
 * to. The worker loads the payload by `ref` and refuses it unless its SHA-256 and size match.
 */
export interface PayloadClaim {
  /** The payload's id in the store (16-64 of `A-Z a-z 0-9 _ -`). */
  ref: string;
  /** SHA-256 of the payload (the arguments' JSON, UTF-8), lowercase hex. */
  sha256: string;
  /** Size of the payload in bytes. */
  size: number;
}

/** Payload refs: safe as a file name and a primary key. */
export const PAYLOAD_REF = /^[A-Za-z0-9_-]{16,64}$/;

/**
 * The message a stream entry carries. Format 1, field `m`: a JSON array `[name, args]` or
 * `[name, args, meta]`. Format 2, field `m2` (a claim check, arguments in the payload store): a JSON
 * object `{"t":name,"p":{"ref","sha256","size"},"id"?,"n"?,"x"?,"s"?,"r"?,"c"?,"tp"?,"tl"?,"ts"?,"l"?}`. Kept short on purpose: a waiting
 * task costs Redis little more than its arguments, or than its claim check. A task that runs
 * straight away has no `id`: its stream entry id is its id.
 */
export interface TaskMessage {
  /** Task name. */
  name: string;
  /** Arguments as given to `enqueue` (JSON); `undefined` in a claim-checked message. */
  args: unknown;
  /** Where the arguments are, when they are in the payload store (format 2). */
  claim?: PayloadClaim | undefined;
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
  /**
   * Whether the worker stores the task's record (state and result) under its result key, when the
   * enqueue said (`storeResult`); `undefined`: as the task's definition says (default: stored).
   */
  storeResult?: boolean | undefined;
  /**
   * The task is a member of a canvas (chain, group, chord): its reference
   * `<canvas local id>@<home queue>:<node>`. Its final outcome makes the settle step append a
   * continuation to its queue (see docs/canvas.md). Absent for every other task.
   */
  canvas?: string | undefined;
  /**
   * The task's priority level, 1 to {@link MAX_PRIORITY} (meta `l`); `undefined`: level 0, the
   * default. Retries, promotions, hand-backs and dead-letter retries put the task back on its level.
   */
  priority?: number | undefined;
  /**
   * The trace context of the enqueue that made the task, when the producer traces (the app option
   * `tracing`); `undefined` otherwise. Kept by retries and hand-backs.
   */
  trace?: TraceContext | undefined;
}

/**
 * W3C trace context carried by a message (meta `tp` or `tl`, and `ts`): written only by a producer
 * that traces, so an untraced message carries no byte of it.
 */
export interface TraceContext {
  /** The W3C `traceparent` of the producer's span. */
  traceparent: string;
  /** The W3C `tracestate`, when the producer's trace has one. */
  tracestate?: string | undefined;
  /**
   * The run links to the producer's span instead of being its child (meta `tl` in place of `tp`):
   * a bulk enqueue, whose one span stands for many messages.
   */
  link?: boolean | undefined;
}

/** The meta of a message: short names, each present only when it says something. */
interface Meta {
  id?: string;
  n?: number;
  x?: number;
  s?: number;
  /** storeResult: 0 or 1. */
  r?: 0 | 1;
  /** Trace context: traceparent the run is a child of (`tp`) or links to (`tl`), and tracestate. */
  tp?: string;
  tl?: string;
  ts?: string;
  /** Canvas member reference. */
  c?: string;
  /** Priority level above 0 (`p` would clash with the claim of format 2). */
  l?: number;
}

type MessageMeta = Omit<TaskMessage, 'name' | 'args' | 'claim'>;

/** Writes the meta that says something into `m`; true when it wrote any. */
function putMeta(m: Meta, meta: MessageMeta): boolean {
  if (meta.id !== undefined) m.id = meta.id;
  if (meta.attempt !== undefined && meta.attempt > 1) m.n = meta.attempt;
  if (meta.expiresAt !== undefined) m.x = meta.expiresAt;
  if (meta.slot !== undefined) m.s = meta.slot;
  if (meta.storeResult !== undefined) m.r = meta.storeResult ? 1 : 0;
  const t = meta.trace;
  if (t !== undefined) {
    if (t.link) m.tl = t.traceparent;
    else m.tp = t.traceparent;
    if (t.tracestate) m.ts = t.tracestate;
  }
  if (meta.canvas !== undefined) m.c = meta.canvas;
  // Last, so a message without it is byte for byte what it was before priorities.
  if (meta.priority !== undefined && meta.priority > 0) m.l = meta.priority;
  return (
    m.id !== undefined ||
    m.n !== undefined ||
    m.x !== undefined ||
    m.s !== undefined ||
    m.r !== undefined ||
    t !== undefined ||
    m.c !== undefined ||
    m.l !== undefined
  );
}

/** The trace context of checked meta, or `undefined` (an untraced message: two property reads). */
function traceOf(m: Record<string, unknown>): TraceContext | undefined {
  if (m.tp === undefined && m.tl === undefined) return undefined;
  const link = m.tp === undefined;
  return {
    traceparent: (link ? m.tl : m.tp) as string,
    tracestate: m.ts as string | undefined,
    link: link || undefined,
  };
}

/**
 * A decoded message from its parts and meta (checked by {@link checkMeta}): one object literal, so
 * every message has the same shape (this runs once per task).
 */
function decoded(name: string, args: unknown, m: Record<string, unknown>): TaskMessage {
  return {
    name,
    args,
    id: m.id as string | undefined,
    attempt: (m.n as number | undefined) ?? 1,
    expiresAt: m.x as number | undefined,
    slot: m.s as number | undefined,
    storeResult: m.r === undefined ? undefined : m.r === 1,
    trace: traceOf(m),
    canvas: m.c as string | undefined,
    priority: m.l as number | undefined,
  };
}

/** Encodes a message; `argsJson` is the already-serialised arguments. */
export function encodeMessage(name: string, argsJson: string, meta: MessageMeta = {}): string {
  const m: Meta = {};
  const head = `[${JSON.stringify(name)},${argsJson}`;
  return putMeta(m, meta) ? `${head},${JSON.stringify(m)}]` : `${head}]`;
}

/**
 * The message of a canvas member's continuation (the internal task `tasuki.canvas`): the member's
 * reference and its final record (JSON, as stored), under its own task id. finish.lua writes the same
 * (without the id: its stream entry names it) on Redis Streams.
 */
export function encodeContinuation(ref: string, record: string, id: string): string {
  return `[${JSON.stringify(CANVAS_TASK)},{"c":${JSON.stringify(ref)},"r":${record}},{"id":${JSON.stringify(id)}}]`;
}

/** Encodes a claim-checked message (format 2, field `m2`): the claim in place of the arguments. */
export function encodeClaimMessage(name: string, claim: PayloadClaim, meta: MessageMeta = {}): string {
  const m: Meta & { t: string; p: PayloadClaim } = {
    t: name,
    p: { ref: claim.ref, sha256: claim.sha256, size: claim.size },
  };
  putMeta(m, meta);
  return JSON.stringify(m);
}

/**
 * Re-encodes a decoded message with new meta (a retry's attempt, a hand-back's task id). The one
 * place a message is rebuilt; everything else passes the raw message on untouched. A claim-checked
 * message stays one: it keeps its claim, never the loaded arguments. The trace context is kept
 * (a retry belongs to the trace of the enqueue that made the task), and so is the priority level (a
 * retry, a hand-back or a dead-letter retry goes back to the task's level).
 */
export function reencodeMessage(msg: TaskMessage, meta: Omit<MessageMeta, 'trace' | 'priority'>): string {
  const all: MessageMeta =
    msg.trace === undefined && msg.priority === undefined
      ? meta
      : { ...meta, trace: msg.trace, priority: msg.priority };
  return msg.claim
    ? encodeClaimMessage(msg.name, msg.claim, all)
    : encodeMessage(msg.name, JSON.stringify(msg.args), all);
}

/** The stream field a raw message belongs in: `m2` for a claim check (`{…}`), else `m`. */
export function messageField(raw: string): string {
  return raw.charCodeAt(0) === 123 ? CLAIM_MESSAGE_FIELD : MESSAGE_FIELD;
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
 * The raw message of a stream entry's fields (`m`, else `m2`). Throws {@link NewerFormatError} when
 * the entry carries only a newer format's field (`m<n>`, n > {@link MESSAGE_VERSION}),
 * {@link PoisonMessageError} when it carries none.
 */
export function messageOf(fields: readonly string[]): string {
  let newer = 0;
  let claim: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name === MESSAGE_FIELD) return fields[i + 1] as string;
    if (name === CLAIM_MESSAGE_FIELD) {
      claim = fields[i + 1];
      continue;
    }
    const version = /^m(\d+)$/.exec(name)?.[1];
    if (version !== undefined && Number(version) > MESSAGE_VERSION) newer = Math.max(newer, Number(version));
  }
  if (claim !== undefined) return claim;
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
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    return decodeClaimMessage(v as Record<string, unknown>, raw);
  }
  if (!Array.isArray(v) || v.length < 2 || v.length > 3 || typeof v[0] !== 'string') {
    throw new PoisonMessageError(`expected [name, args, meta?], got ${JSON.stringify(raw.slice(0, 80))}`);
  }
  const meta: unknown = v[2] ?? NO_META;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new PoisonMessageError('meta is not an object');
  }
  const m = meta as Record<string, unknown>;
  if (m !== NO_META) checkMeta(m);
  return decoded(v[0], v[1], m);
}

function checkMeta(m: Record<string, unknown>): void {
  if (m.id !== undefined && typeof m.id !== 'string') throw new PoisonMessageError('meta.id is not a string');
  if (m.n !== undefined && !(Number.isInteger(m.n) && (m.n as number) >= 1)) {
    throw new PoisonMessageError('meta.n (attempt) is not a positive integer');
  }
  if (m.x !== undefined && typeof m.x !== 'number')
    throw new PoisonMessageError('meta.x (expiry) is not a number');
  if (m.s !== undefined && typeof m.s !== 'number')
    throw new PoisonMessageError('meta.s (rate-limit slot) is not a number');
  if (m.r !== undefined && m.r !== 0 && m.r !== 1)
    throw new PoisonMessageError('meta.r (store the result) is not 0 or 1');
  // Trace fields are checked for type only: a malformed traceparent is the tracer's to ignore, and
  // never costs a task its run.
  if (
    (m.tp !== undefined && typeof m.tp !== 'string') ||
    (m.tl !== undefined && typeof m.tl !== 'string') ||
    (m.ts !== undefined && typeof m.ts !== 'string')
  )
    throw new PoisonMessageError('meta.tp, tl or ts (trace context) is not a string');
  if (m.c !== undefined && !(typeof m.c === 'string' && CANVAS_REF.test(m.c)))
    throw new PoisonMessageError('meta.c (canvas member) is not a canvas reference');
  if (
    m.l !== undefined &&
    !(Number.isInteger(m.l) && (m.l as number) >= 1 && (m.l as number) <= MAX_PRIORITY)
  )
    throw new PoisonMessageError(`meta.l (priority level) is not an integer 1..${MAX_PRIORITY}`);
}

/**
 * A canvas member's reference: `<canvas local id>@<home queue>:<node index>`. Only characters JSON
 * needs no escape for, so the settle script can write it into a continuation as it is.
 */
export const CANVAS_REF = /^\d+-[0-9a-z]+@[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:\d{1,6}$/;

/** Format 2: `{"t":name,"p":{"ref","sha256","size"},...meta}`. */
function decodeClaimMessage(m: Record<string, unknown>, raw: string): TaskMessage {
  if (typeof m.t !== 'string') {
    throw new PoisonMessageError(`expected {"t": name, "p": claim}, got ${JSON.stringify(raw.slice(0, 80))}`);
  }
  const p = m.p as Record<string, unknown> | null | undefined;
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.ref !== 'string' ||
    !PAYLOAD_REF.test(p.ref) ||
    typeof p.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(p.sha256) ||
    !(Number.isSafeInteger(p.size) && (p.size as number) >= 0)
  ) {
    throw new PoisonMessageError(
      'claim "p" is not {ref (16-64 of A-Z a-z 0-9 _ -), sha256 (64 hex), size (bytes)}',
    );
  }
  checkMeta(m);
  const message = decoded(m.t, undefined, m);
  message.claim = { ref: p.ref, sha256: p.sha256, size: p.size as number };
  return message;
}
