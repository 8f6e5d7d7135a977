import type { PayloadClaim } from './message.js';

/** States a task moves through. See docs/architecture.md for the state diagram. */
export type TaskState =
  | 'delayed'
  | 'queued'
  | 'active'
  | 'retrying'
  | 'succeeded'
  | 'failed'
  | 'expired'
  /** Taken off its queue before it ran (`app.revoke`); it never runs. */
  | 'revoked'
  /** Stopped while it ran, or before it started (`app.cancel`); not retried, not dead-lettered. */
  | 'cancelled';

/** States after which a task does nothing more (until a dead letter is retried by hand). */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>([
  'succeeded',
  'failed',
  'expired',
  'revoked',
  'cancelled',
]);

/** An error as stored in a task record. */
export interface StoredError {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
}

/**
 * What is stored under a task's result key (JSON, with the app's result TTL). It carries who wrote it
 * (`worker`) and when (`finishedAt`), since Redis keeps no creation time.
 */
export interface TaskRecord {
  state: TaskState;
  task: string;
  attempt: number;
  worker: string;
  startedAt: number;
  finishedAt: number;
  result?: unknown;
  /**
   * Succeeded with a result too big for Redis: where it is in the payload store (then `result` is
   * absent). `handle.result()` and `app.getTask()` load it.
   */
  resultClaim?: PayloadClaim;
  error?: StoredError;
  /** Retrying: when the next attempt is due (ms). */
  retryAt?: number;
  /** Failed: why it was dead-lettered (see {@link DeadReason}). */
  reason?: DeadReason;
  /** Revoked or cancelled: who asked (`host:pid`, or what the caller passed as `by`). */
  by?: string;
}

/** Why a task went to the dead letters. */
export type DeadReason =
  | 'max-attempts'
  | 'not-retryable'
  | 'undecodable'
  | 'unknown-task'
  | 'invalid-args'
  | 'max-deliveries'
  /** Written by a newer tasuki in a format no worker that saw it knew (see docs/reliability.md). */
  | 'newer-format'
  /** Claim-checked arguments not in the payload store (deleted, expired, another store). */
  | 'payload-missing'
  /** Claim-checked arguments whose SHA-256 or size does not match the message's claim. */
  | 'payload-mismatch'
  /** A claim-checked task reached only workers with no payload store configured. */
  | 'no-payload-store';

export function encodeRecord(r: TaskRecord): string {
  return JSON.stringify(r);
}

export function decodeRecord(raw: string): TaskRecord {
  return JSON.parse(raw) as TaskRecord;
}

/** Converts anything thrown into a storable error. */
export function toStoredError(err: unknown): StoredError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      stack: err.stack,
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)) };
}
