import { TasukiError } from '../errors.js';

/** The lock could not be acquired within `maxWait` (or at once, when not blocking). */
export class LockTimeoutError extends TasukiError {
  /** Name of the lock. */
  readonly lock: string;
  /** How long the caller waited, in ms. */
  readonly waitedMs: number;

  constructor(lock: string, waitedMs: number, reason: string, options?: { cause?: unknown }) {
    super(
      'E_LOCK_TIMEOUT',
      `could not acquire lock "${lock}" within ${Math.round(waitedMs)} ms: ${reason}`,
      options,
    );
    this.lock = lock;
    this.waitedMs = waitedMs;
  }
}

/**
 * The holder no longer owns the lock: it expired (and may now belong to someone else), was deleted,
 * or could not be renewed in time. Work done under it after that moment was not protected by the
 * lock — only a fenced resource can still reject it.
 */
export class LockLostError extends TasukiError {
  /** Name of the lock. */
  readonly lock: string;
  /** Fencing token of the acquisition that was lost. */
  readonly token: bigint;

  constructor(lock: string, token: bigint, reason: string, options?: { cause?: unknown }) {
    super('E_LOCK_LOST', `lock "${lock}" (fencing token ${token}) is no longer held: ${reason}`, options);
    this.lock = lock;
    this.token = token;
  }
}

/** Fewer replicas than `waitReplicas.replicas` acknowledged the acquisition; the lock was released. */
export class LockReplicationError extends TasukiError {
  /** Name of the lock. */
  readonly lock: string;
  /** Replicas that acknowledged the write. */
  readonly acknowledged: number;

  constructor(lock: string, wanted: number, acknowledged: number, timeoutMs: number) {
    super(
      'E_LOCK_REPLICAS',
      `lock "${lock}": only ${acknowledged} of ${wanted} replicas acknowledged the acquisition within ${timeoutMs} ms; ` +
        `the lock was released. Check the replicas (INFO replication) or lower waitReplicas.replicas.`,
    );
    this.lock = lock;
    this.acknowledged = acknowledged;
  }
}

/**
 * A write through a fenced resource carried a token that is not strictly newer than the one the
 * resource already saw: the writer's lock was lost (a pause past the TTL) and someone newer wrote.
 * The write was not applied. Do not retry it with the same token.
 */
export class StaleTokenError extends TasukiError {
  /** What was written to (table/row or key). */
  readonly resource: string;
  /** The writer's token. */
  readonly token: bigint;
  /** The token stored with the resource, when known. */
  readonly current: bigint | undefined;

  constructor(resource: string, token: bigint, current: bigint | undefined) {
    super(
      'E_STALE_TOKEN',
      `stale fencing token ${token} for ${resource}: it already holds token ${current ?? '(unknown)'}; ` +
        `the write was rejected because a newer lock holder wrote first. Re-acquire the lock and read again.`,
    );
    this.resource = resource;
    this.token = token;
    this.current = current;
  }
}
