/**
 * Lock events of this process, for metrics and dashboards: every acquisition and every loss of any
 * {@link Lock}. Process-wide because locks are made in many places (apps, workers, beat); built only
 * while someone listens.
 */
import { TypedEmitter } from '../events/emitter.js';

/** A lock event: which lock name, and the fencing token of the acquisition. */
export interface LockEvent {
  name: string;
  token: bigint;
}

/** Lock events by name. `lost`: an acquisition ended before its release (expired, taken over). */
export interface LockEventMap {
  acquired: LockEvent;
  lost: LockEvent & { reason: string };
}

/** Every lock acquisition and loss in this process. */
export const lockEvents = new TypedEmitter<LockEventMap>();
