/**
 * Fenced distributed locks: {@link Lock}, {@link Locks}, {@link withLock}; resources that reject
 * stale fencing tokens ({@link fencedUpsert}, {@link fencedUpdate}, {@link fencedSet}); and
 * {@link withDeadlockRetry} for SQL transactions. See docs/locks.md.
 */
export { Lock } from './lock.js';
export { Locks, withLock } from './locks.js';
export type { LockOptions, WaitReplicas } from './options.js';
export { LockTimeoutError, LockLostError, LockReplicationError, StaleTokenError } from './errors.js';
export { fencedSet, fencedGet, type FencedValue } from './fence-redis.js';
export { fencedUpsert, fencedUpdate, type SqlQueryable, type FencedRowWrite } from './fence-postgres.js';
export { fencedUpsertMySql, fencedUpdateMySql, type MySqlQueryable } from './fence-mysql.js';
export { withDeadlockRetry, isDeadlockError, type DeadlockRetryOptions } from './deadlock.js';
