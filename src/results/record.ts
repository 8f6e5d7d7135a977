/** States a task moves through. See docs/architecture.md for the state diagram. */
export type TaskState = 'delayed' | 'queued' | 'active' | 'succeeded' | 'failed';

/** States after which a task does nothing more. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['succeeded', 'failed']);

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
  error?: StoredError;
}

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
