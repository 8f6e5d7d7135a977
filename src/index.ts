/**
 * tasuki: distributed tasks for TypeScript on Node.js, built on Redis Streams.
 *
 * Glossary:
 * - **task**: a named unit of work with an argument schema and a handler; also one enqueued run of it.
 * - **queue**: a named Redis stream tasks wait in; workers choose which queues they serve.
 * - **worker**: a process (or object) that fetches tasks from queues and runs their handlers.
 * - **attempt**: one run of a task's handler; retries make further attempts.
 * - **result**: what the handler returned (or the error it threw), kept for the result TTL.
 * - **key**: a Redis key, declared once in the keyspace registry with owner, version and TTL.
 * - **schedule**: a task, its arguments and when to enqueue it (cron, interval or one time).
 * - **tick**: one due time of a schedule; beat enqueues each tick once.
 *
 * @packageDocumentation
 */
export { tasuki, Tasuki, isTasukiApp, type AppOptions, type MemoryGuardOptions } from './app/app.js';
export { MemoryGuard, parseMemoryInfo, type MemoryInfo } from './limits/memory-guard.js';
export { parseRate, type Rate, type RateLimit } from './limits/rate.js';
export { Task, TaskHandle, type TaskDefinition, type TaskContext } from './task/task.js';
export type { EnqueueOptions } from './task/enqueue-options.js';
export { Signature, type SignatureOptions } from './task/signature.js';
export {
  chain,
  chord,
  group,
  Chain,
  Group,
  CanvasFailedError,
  CanvasHandle,
  type AnyCanvas,
  type Canvas,
  type CanvasFailure,
  type OutputOf,
  type OutputsOf,
} from './canvas/index.js';
export type { StandardSchemaV1, InferInput, InferOutput } from './task/schema.js';
export type { Isolation, IsolationOptions } from './task/isolation.js';
export { ProgressError, PROGRESS_MAX_BYTES, type Progress, type ProgressValue } from './progress/value.js';
export type { FollowProgressOptions } from './progress/reader.js';
export { IsolateCrashError } from './isolation/protocol.js';
export { formatTaskId, parseTaskId } from './wire/ids.js';
export { GROUP, MESSAGE_VERSION } from './wire/fields.js';
export { MAX_PRIORITY, PRIORITY_LEVELS } from './wire/priority.js';
export type { QueueStats } from './results/stats.js';
export type { ControlOptions, ControlResult, PauseInfo, PurgeResult } from './control/control.js';
export { Worker, type WorkerOptions } from './worker/worker.js';
export {
  Beat,
  LEASE_NAME,
  type BeatOptions,
  type BeatHooks,
  type BeatHost,
  type TickEvent,
} from './beat/beat.js';
export { Schedules, type ScheduleInfo } from './beat/schedules.js';
export type { ScheduleDefinition, ScheduleSpec, MisfirePolicy, StoredSchedule } from './beat/definition.js';
export { RetryLater, backoffDelay, type Backoff, type RetryOn, type ErrorClass } from './task/retry.js';
export { DeadLetters, type DeadLetter, type DeadLetterSelection } from './deadletters/dead-letters.js';
export type { StoredDeadLetter } from './wire/dead-letter.js';
export type { PayloadOptions } from './app/options.js';
export type { PayloadStore, NewPayload } from './payloads/store.js';
export { FileSystemPayloadStore, type FileSystemPayloadStoreOptions } from './payloads/filesystem.js';
export {
  PostgresPayloadStore,
  type PostgresPayloadStoreOptions,
  type PayloadSqlQueryable,
} from './payloads/postgres.js';
export { openPayloadStore } from './payloads/open.js';
export { PayloadMissingError, PayloadMismatchError } from './payloads/claim.js';
export type { PayloadClaim } from './wire/message.js';
export type { TaskInfo } from './results/lookup.js';
export type { Jsonified } from './results/jsonified.js';
export type { TaskState, TaskRecord, StoredError, DeadReason } from './wire/record.js';
export { Keyspace, KeyDef, type KeySpec, type KeyType } from './keys/registry.js';
export { keyPart } from './keys/part.js';
export { queueStreams, tasukiKeys, type TasukiKeys } from './keys/tasuki-keys.js';
export { connect, type ConnectionOptions } from './connection/connect.js';
export {
  maskUrl,
  parseRedisUrl,
  redisUrlFromEnv,
  type RedisTarget,
  type HostPort,
} from './connection/url.js';
export { isCluster, type RedisConnection } from './connection/redis.js';
export { slotOf } from './connection/slots.js';
export {
  Channel,
  Subscription,
  type ChannelOptions,
  type ChannelMessage,
  type ChannelHost,
  type SubscribeOptions,
  type ConsumeOptions,
} from './channels/channel.js';
export { taskEventSchema, TASK_EVENT_TYPES, type LifecycleEvent } from './channels/lifecycle.js';
export { EmbeddedRedis, type EmbeddedRedisOptions } from './connection/embedded.js';
export { createLogger, type Logger } from './log/logger.js';
export type { Duration } from './util/duration.js';
export * from './errors.js';
export {
  Lock,
  Locks,
  withLock,
  LockTimeoutError,
  LockLostError,
  LockReplicationError,
  StaleTokenError,
  fencedSet,
  fencedGet,
  fencedUpsert,
  fencedUpdate,
  fencedUpsertMySql,
  fencedUpdateMySql,
  withDeadlockRetry,
  isDeadlockError,
  type LockOptions,
  type WaitReplicas,
  type FencedValue,
  type SqlQueryable,
  type FencedRowWrite,
  type MySqlQueryable,
  type DeadlockRetryOptions,
} from './lock/index.js';
export {
  catalogueRow,
  catalogueRows,
  renderCatalogue,
  CATALOGUE_FORMATS,
  type CatalogueRow,
  type CatalogueFormat,
} from './keys/catalogue.js';
export {
  auditKeys,
  failingKinds,
  parseFailOn,
  FINDING_KINDS,
  TASUKI_CREATION_READERS,
  type AuditOptions,
  type AuditReport,
  type AuditProgress,
  type KeyFinding,
  type FindingKind,
  type OldestKey,
  type AgeBasis,
  type OwnerTotal,
  type UnownedFamily,
  type DeclaredTotal,
  type CreationReader,
  type CreationMetadata,
} from './keys/audit.js';
export {
  defineKeyspace,
  AppKeyspace,
  KeyValueError,
  type KeyspaceHost,
  type KeyspaceOptions,
  type GetOrSetOptions,
  type WriteOptions,
  type Migration,
  type KeyValueProblem,
  type CodecName,
} from './keyspaces/index.js';
export { parseHeader as parseEnvelope, type EnvelopeHeader } from './keys/envelope.js';
export type { KeyValueFormat } from './keys/registry.js';
export { Cache, createCache, Throttle, type CacheOptions, type ThrottleDecision } from './cache/index.js';
export {
  defineSequence,
  RedisSequence,
  PostgresSequence,
  MySqlSequence,
  SEQUENCE_TABLE,
  type Sequence,
  type SequenceHost,
  type RedisSequenceOptions,
  type SqlSequenceOptions,
} from './sequences/index.js';
export { TypedEmitter, type Listener, type ListenerErrorHandler } from './events/emitter.js';
export {
  TaskEvents,
  type TaskEventMap,
  type TaskEvent,
  type TaskEventType,
  type TaskEventBase,
  type SucceededEvent,
  type RetriedEvent,
  type DeadEvent,
  type ExpiredEvent,
  type CancelledEvent,
  type RevokedEvent,
  type ReleasedEvent,
  type LimitedEvent,
  type EnqueuedEvent,
  type StartedEvent,
  type EnqueueEventMap,
} from './events/event-map.js';
export type { TaskTracer, TraceContext, RunSpanStart, RunSpanEnd, EnqueuedTask } from './task/tracer.js';
export { TaskSubscription } from './events/subscription.js';
export {
  Inspector,
  type HeldLock,
  type ListOptions,
  type ListedState,
  type ListedTask,
  type TaskPage,
  type TaskMessageView,
  type WorkerInfo,
} from './inspect/inspector.js';
export type { WorkerPresence } from './wire/presence.js';
