/**
 * Every error tasuki throws is a {@link TasukiError} with a stable `code`, a message that quotes the
 * bad input and says what to do, and the original error kept as `cause`.
 */
import { isUnreachable } from './connection/failures.js';
import { quote } from './util/quote.js';

export type TasukiErrorCode =
  | 'E_CONFIG'
  | 'E_CONNECTION'
  | 'E_AUTH'
  | 'E_CLOSED'
  | 'E_TASK_ARGS'
  | 'E_POISON'
  | 'E_PAYLOAD_TOO_LARGE'
  | 'E_PAYLOAD_MISSING'
  | 'E_PAYLOAD_MISMATCH'
  | 'E_PAYLOAD_STORE'
  | 'E_TASK_ID'
  | 'E_OPTIONS'
  | 'E_UNKNOWN_QUEUE'
  | 'E_UNKNOWN_TASK'
  | 'E_DUPLICATE_TASK'
  | 'E_KEY'
  | 'E_SCRIPT'
  | 'E_TIMEOUT'
  | 'E_TASK_FAILED'
  | 'E_NOT_FOUND'
  | 'E_REDIS'
  | 'E_BROKER'
  | 'E_REPLICAS'
  | 'E_TIME_LIMIT'
  | 'E_EXPIRED'
  | 'E_RESULT'
  | 'E_PROGRESS'
  | 'E_ISOLATE'
  | 'E_LOST'
  | 'E_LOCK_TIMEOUT'
  | 'E_LOCK_LOST'
  | 'E_LOCK_REPLICAS'
  | 'E_LOCK_STATE'
  | 'E_STALE_TOKEN'
  | 'E_MEMORY_FULL'
  | 'E_KEY_VALUE'
  | 'E_CANVAS'
  | 'E_CANVAS_FAILED'
  | 'E_REVOKED'
  | 'E_CANCELLED';

export class TasukiError extends Error {
  readonly code: TasukiErrorCode;

  constructor(code: TasukiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One field that failed validation: its dotted path and what was wrong with it. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** Issues a message lists before it says how many more there are (all stay in `issues`). */
const ISSUES_LISTED = 10;

function describeIssues(issues: readonly FieldIssue[]): string {
  const listed = issues.slice(0, ISSUES_LISTED).map((i) => `${i.path || '(root)'}: ${i.message}`);
  const more = issues.length - listed.length;
  return listed.join('; ') + (more > 0 ? `; and ${more} more (see the error's issues)` : '');
}

/** Arguments given to `enqueue` (or found by a worker) do not match the task's schema. */
export class TaskArgsError extends TasukiError {
  readonly task: string;
  readonly issues: readonly FieldIssue[];

  constructor(task: string, issues: readonly FieldIssue[]) {
    super(
      'E_TASK_ARGS',
      `invalid arguments for task "${task}": ${describeIssues(issues)}. Fix the arguments to match the task's schema; nothing was enqueued.`,
    );
    this.task = task;
    this.issues = issues;
  }
}

/** Enqueue or configuration options that are malformed or contradict each other. */
export class OptionsError extends TasukiError {
  readonly issues: readonly FieldIssue[];

  constructor(what: string, issues: readonly FieldIssue[], code: TasukiErrorCode = 'E_OPTIONS') {
    super(code, `invalid ${what}: ${describeIssues(issues)}`);
    this.issues = issues;
  }
}

/**
 * Arguments too large to enqueue as configured: over `maxPayloadBytes`, or over the inline limit
 * with no payload store to put them in. Nothing was written.
 */
export class PayloadTooLargeError extends TasukiError {
  readonly task: string;
  /** Size of the encoded arguments, bytes. */
  readonly size: number;
  /** The limit they exceed, bytes. */
  readonly limit: number;

  /**
   * @param kind - `max`: over `maxPayloadBytes` (whatever the store); `inline`: over the inline limit
   *   with no payload store configured.
   */
  constructor(task: string, path: string, size: number, limit: number, kind: 'max' | 'inline') {
    const where = `arguments of task "${task}"${path ? ` at ${path}` : ''} are ${size} bytes`;
    super(
      'E_PAYLOAD_TOO_LARGE',
      kind === 'max'
        ? `${where}, over the limit of ${limit} bytes. Store large data elsewhere and pass its id (a claim check), ` +
            'or raise maxPayloadBytes; nothing was enqueued.'
        : `${where}, over the inline limit of ${limit} bytes, and the app has no payload store to keep them in ` +
            "(a claim check). Configure one: tasuki({ payloads: { store: '/var/lib/myapp/payloads' } }) for a " +
            "directory, { store: 'postgres://...' } or new PostgresPayloadStore({ pool }) for PostgreSQL, or set " +
            'TASUKI_PAYLOAD_STORE (see docs/payloads.md); or raise payloads.inlineLimit. Nothing was enqueued.',
    );
    this.task = task;
    this.size = size;
    this.limit = limit;
  }
}

/**
 * The payload store failed (unreachable, disk full...): a producer's enqueue wrote nothing to Redis;
 * a worker's attempt is retried later. `cause` is the store's own error.
 */
export class PayloadStoreError extends TasukiError {
  constructor(what: string, cause: unknown) {
    super(
      'E_PAYLOAD_STORE',
      `${what} failed: the payload store said ${quote(cause instanceof Error ? cause.message : String(cause), 300)}. ` +
        'Check that the store (directory or database) is reachable and writable.',
      { cause },
    );
  }
}

export class UnknownQueueError extends TasukiError {
  readonly queue: string;

  /** @param consequence - what did not happen because of it (default "nothing was enqueued"). */
  constructor(queue: string, known: readonly string[], consequence = 'nothing was enqueued') {
    super(
      'E_UNKNOWN_QUEUE',
      `unknown queue ${quote(queue)}: this app declares ${known.map((q) => quote(q)).join(', ')}. ` +
        `Add it to the app's \`queues\` option or use one of those; ${consequence}.`,
    );
    this.queue = queue;
  }
}

export class UnknownTaskError extends TasukiError {
  readonly task: string;

  constructor(task: string, known: readonly string[]) {
    super(
      'E_UNKNOWN_TASK',
      `unknown task "${task}": the app defines ${known.length ? known.map((t) => `"${t}"`).join(', ') : 'no tasks'}. ` +
        `Define it with app.task() in the module the worker loads.`,
    );
    this.task = task;
  }
}

/** Waiting for something (a result, a connection) took longer than allowed. */
export class TimeoutError extends TasukiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_TIMEOUT', message, options);
  }
}

/** An error as it came from another process: name, message, stack, and its `code` when it had one. */
export interface RemoteError {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
}

/** The task ran and failed; `remote` holds the error its handler threw (or the worker's, e.g. E_RESULT). */
export class TaskFailedError extends TasukiError {
  readonly taskId: string;
  readonly remote: RemoteError;

  constructor(taskId: string, remote: RemoteError) {
    super('E_TASK_FAILED', `task ${taskId} failed: ${remote.name}: ${remote.message}`);
    this.taskId = taskId;
    this.remote = remote;
  }
}

/** An attempt ran past its time limit. */
export class TimeLimitError extends TasukiError {
  readonly limitMs: number;
  readonly kind: 'soft' | 'hard';

  constructor(kind: 'soft' | 'hard', limitMs: number) {
    super(
      'E_TIME_LIMIT',
      kind === 'hard'
        ? `the attempt ran past its time limit of ${limitMs} ms and was failed; make the handler faster, honour ctx.signal, or raise timeLimit`
        : `the attempt ran past its soft time limit of ${limitMs} ms; ctx.signal was aborted so the handler can stop cleanly`,
    );
    this.kind = kind;
    this.limitMs = limitMs;
  }
}

/** Turn a zod-style issue list into tasuki's field issues. */
export function fieldIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): FieldIssue[] {
  return issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/** The app was closed: nothing more goes through it. */
export class ClosedError extends TasukiError {
  constructor(what: string) {
    super('E_CLOSED', `the app is closed: ${what}. Closing is final; create a new app to go on.`);
  }
}

/** Redis knows nothing of a task id: never enqueued, or its record expired. */
export class TaskNotFoundError extends TasukiError {
  readonly taskId: string;

  constructor(taskId: string) {
    super(
      'E_NOT_FOUND',
      `no task ${quote(taskId)}: never enqueued, or finished longer ago than the app's resultTtl ` +
        `(its record expired). Check the id and the app's prefix.`,
    );
    this.taskId = taskId;
  }
}

/**
 * A failed Redis command as a typed error that says what was being done: `E_REDIS`, saying either
 * that Redis is unreachable (the connection is down and reconnecting) or what Redis answered. For a
 * write (`wrote: false` for reads) it says nothing was written. Errors that are typed already
 * (E_AUTH, E_CONNECTION, E_CLOSED...) pass through.
 */
export function redisError(what: string, err: unknown, opts: { wrote?: false } = {}): TasukiError {
  if (err instanceof TasukiError) return err;
  const nothing = opts.wrote === false ? '' : '; nothing was written';
  if (isUnreachable(err)) {
    return new TasukiError(
      'E_REDIS',
      `${what} failed: Redis is unreachable (the connection is down and reconnecting)${nothing}. ` +
        `Try again later, or check that Redis runs and the URL is right.`,
      { cause: err },
    );
  }
  const msg = err instanceof Error ? err.message : String(err);
  const hint = /OOM/.test(msg)
    ? ' Redis is at maxmemory: free memory or raise maxmemory (and check what fills it with `tasuki keys audit`).'
    : /EXECABORT/.test(msg)
      ? ''
      : ' Check that Redis is reachable and healthy.';
  return new TasukiError('E_REDIS', `${what} failed: Redis said ${quote(msg, 300)}${nothing}.${hint}`, {
    cause: err,
  });
}

/** Redis's memory as the memory guard last saw it (INFO memory). */
export interface MemoryReading {
  /** `used_memory`, bytes. */
  used: number;
  /** `maxmemory`, bytes (0: no limit). */
  max: number;
}

/**
 * Redis is (nearly) full, so the task was not enqueued: either the memory guard saw `used_memory`
 * above the high watermark for longer than its `maxWait`, or Redis itself refused the write with
 * `OOM command not allowed`. Nothing of the task was written. Retryable: try again once workers
 * have drained some work, or give Redis more memory.
 */
export class MemoryFullError extends TasukiError {
  /** Always true: the same enqueue may succeed later. */
  readonly retryable = true;
  /** What the guard last read; `undefined` when the refusal came from Redis before any reading. */
  readonly reading: MemoryReading | undefined;
  /** The guard's high watermark (fraction of maxmemory), when it was the guard that refused. */
  readonly watermark: number | undefined;

  constructor(
    what: string,
    detail: { reading?: MemoryReading | undefined; watermark?: number | undefined; waitedMs?: number },
    options?: { cause?: unknown },
  ) {
    const r = detail.reading;
    const usage =
      r && r.max > 0
        ? `used_memory ${mib(r.used)} of maxmemory ${mib(r.max)} (${Math.round((r.used / r.max) * 100)} %)`
        : 'used_memory at maxmemory';
    const why =
      detail.watermark !== undefined
        ? `Redis is nearly full: ${usage}, above the memory guard's high watermark of ${Math.round(detail.watermark * 100)} %` +
          (detail.waitedMs !== undefined ? `, and no headroom came within ${detail.waitedMs} ms` : '')
        : `Redis refused the write as out of memory (${r && r.max > 0 ? `last sample: ${usage}` : usage}): Redis said ${quote(
            options?.cause instanceof Error ? options.cause.message : 'OOM',
            200,
          )}`;
    super(
      'E_MEMORY_FULL',
      `${what} failed: ${why}; nothing was written. This is retryable: try again later (workers free memory as ` +
        'they finish tasks), run more workers, raise maxmemory, or find what fills Redis with `tasuki keys audit` ' +
        '(see docs/memory.md).',
      options,
    );
    this.reading = r;
    this.watermark = detail.watermark;
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** A task was revoked (`app.revoke`): it never ran, or its attempt was stopped and its outcome dropped. */
export class RevokedError extends TasukiError {
  constructor(by: string) {
    super('E_REVOKED', `the task was revoked by ${by}; it does not run (see docs/control.md)`);
  }
}

/** A running task was cancelled (`app.cancel`): its signal aborted; it is not retried. */
export class CancelledError extends TasukiError {
  constructor(by: string) {
    super(
      'E_CANCELLED',
      `the task was cancelled by ${by}; ctx.signal was aborted and the task ends as cancelled, not retried (see docs/control.md)`,
    );
  }
}
