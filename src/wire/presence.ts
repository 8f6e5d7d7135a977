/**
 * A worker's presence record: what a live worker says about itself every few seconds, one field of
 * the `workers` hash per worker, so tools (inspect, dashboard) can list workers with their
 * concurrency, load and counts without asking them.
 */

/** What a worker publishes about itself. */
export interface WorkerPresence {
  name: string;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  /** Tasks running now. */
  inFlight: number;
  /** Attempts finished since it started, by outcome. */
  counts: Record<string, number>;
  startedAt: number;
  /** When this record was written (ms); a worker silent for three intervals is taken for dead. */
  seenAt: number;
  /** How often it writes the record, ms. */
  intervalMs: number;
}

export function encodePresence(p: WorkerPresence): string {
  return JSON.stringify(p);
}

export function decodePresence(raw: string): WorkerPresence | undefined {
  try {
    const p = JSON.parse(raw) as WorkerPresence;
    return typeof p === 'object' && p !== null && typeof p.name === 'string' ? p : undefined;
  } catch {
    return undefined;
  }
}
