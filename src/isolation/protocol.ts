/**
 * What a worker and its isolates say to each other (structured clone over a thread's port or a
 * child's IPC channel), and how errors cross: as plain data, made into errors again on the worker's
 * side so that retry policies, records and dead letters see the handler's name, message and code.
 */
import { TasukiError } from '../errors.js';
import { RetryLater } from '../task/retry.js';

/** An error as plain data. */
export interface WireError {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
  /** RetryLater's delay. */
  delayMs?: number | undefined;
}

/** What the context of an isolated handler knows of its attempt. */
export interface IsolatedAttempt {
  id: string;
  queue: string;
  attempt: number;
  /** The attempt's fencing token (`ctx.fence`; a bigint crosses by structured clone). */
  fence: bigint;
  /** The priority level it was delivered at (`ctx.priority`). */
  priority: number;
}

/** Worker to isolate. */
export type ToIsolate =
  | { type: 'run'; module: string; task: string; args: unknown; attempt: IsolatedAttempt }
  | { type: 'abort'; reason: WireError };

/** Isolate to worker. */
export type FromIsolate =
  /** The module is loaded and the handler is being called: its time limits start now. */
  | { type: 'started' }
  | { type: 'done'; ok: true; value: unknown }
  | { type: 'done'; ok: false; error: WireError }
  | { type: 'progress'; value: unknown }
  | { type: 'log'; line: string }
  /** A child process's uncaught exception, sent just before it exits. */
  | { type: 'crash'; error: WireError };

/** The isolate running a handler died (exit, uncaught exception, out of memory): the attempt failed. */
export class IsolateCrashError extends TasukiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_ISOLATE', message, options);
  }
}

export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as { code?: unknown }).code;
  const delayMs = (err as { delayMs?: unknown }).delayMs;
  return {
    name: err.name,
    message: err.message,
    stack: err.stack,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof delayMs === 'number' ? { delayMs } : {}),
  };
}

/** An error again: a `RetryLater` stays one (its delay too), others keep name, message, code, stack. */
export function fromWireError(w: WireError): Error {
  const err =
    w.name === 'RetryLater'
      ? new RetryLater(w.message, w.delayMs === undefined ? {} : { delay: w.delayMs })
      : w.code?.startsWith('E_') === true
        ? new TasukiError(w.code as TasukiError['code'], w.message)
        : new Error(w.message);
  err.name = w.name;
  if (w.stack !== undefined) err.stack = w.stack;
  if (w.code !== undefined) (err as Error & { code?: string }).code = w.code;
  return err;
}
