/**
 * Progress values: what `ctx.progress()` accepts (a number or small JSON), checked the same way in
 * the worker and inside an isolate, and what readers get back.
 */
import { TasukiError } from '../errors.js';

/** Largest progress value, as JSON bytes: progress is a gauge, not a data channel. */
export const PROGRESS_MAX_BYTES = 1024;

/**
 * What a handler may report: a number, or any small JSON value (`{ done: 3, total: 10 }`). Typed
 * loosely (`object` takes interfaces, which an index signature would not); checked when reported.
 */
export type ProgressValue = number | string | boolean | null | object;

/** One progress report as readers see it. */
export interface Progress {
  /** The value the handler reported (back from JSON). */
  value: unknown;
  /** The attempt that reported it, from 1. */
  attempt: number;
  /** When it was written (Redis time, ms since the epoch). */
  at: number;
}

/** A progress value that cannot be stored: not JSON, or over {@link PROGRESS_MAX_BYTES}. */
export class ProgressError extends TasukiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_PROGRESS', message, options);
  }
}

/** The value as JSON, or a {@link ProgressError} that says what was wrong and what to report instead. */
export function encodeProgress(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return String(value);
    throw new ProgressError(`ctx.progress(${value}): a progress number must be finite`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new ProgressError(
      `ctx.progress(): the value is not JSON (${(err as Error).message}); report a number or plain data`,
      { cause: err },
    );
  }
  if (json === undefined) {
    throw new ProgressError(`ctx.progress(): ${typeof value} is not JSON; report a number or plain data`);
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > PROGRESS_MAX_BYTES) {
    throw new ProgressError(
      `ctx.progress(): the value is ${bytes} bytes of JSON, over the limit of ${PROGRESS_MAX_BYTES}; ` +
        'report a number or a small object such as { done, total }, and return big data as the result',
    );
  }
  return json;
}
