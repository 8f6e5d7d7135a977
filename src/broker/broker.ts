/**
 * The broker contract: the transport between producers and workers. A producer publishes tasks
 * (one, many, delayed; {@link Publisher}); a worker fetches deliveries, settles finished ones in
 * batches, renews its claims, reclaims the deliveries of dead workers, hands back what it will not
 * run, and promotes due delayed tasks ({@link Broker}). Two implementations: Redis Streams
 * (./redis-streams.ts, ./redis-publisher.ts) and RabbitMQ (./rabbitmq.ts, ./rabbitmq-publisher.ts);
 * the rest of tasuki does not know which one it talks to. Results, locks, keys, beat leadership and
 * events stay on Redis whatever the broker.
 */

/** Which broker an app's tasks travel through. */
export type BrokerKind = 'redis' | 'rabbitmq';

/** One task to publish, checked and encoded by the producer (src/task/task.ts). */
export interface Publication {
  readonly queue: string;
  /** The task's name (for error messages and the broker's message properties). */
  readonly task: string;
  /** The encoded message (src/wire/message.ts). */
  readonly message: string;
  /** The message is a claim check (format 2), not inline arguments. */
  readonly claimed: boolean;
  /** When the task is due, ms since the epoch; 0: at once. */
  readonly due: number;
  /**
   * The task's local id when the producer made one (a delayed task, or any task on a broker whose
   * {@link Publisher.mintsIds} is false); `undefined`: the broker's own id names it.
   */
  readonly localId: string | undefined;
  /** Publish at most once per key (within the app's idempotency TTL). */
  readonly idempotencyKey: string | undefined;
  /**
   * Priority level, 0 (the default) to 3 (src/wire/priority.ts); the message's meta carries it too.
   * A task above level 0 goes to its level's stream (RabbitMQ: queue), made on first use.
   */
  readonly priority: number;
}

/** What {@link Publisher.publishMany} resolves per item: the local id, or for an idempotency key whether it created the task. */
export type Published = string | { readonly local: string; readonly created: boolean };

/** A task a Redis script wrote to a queue's outbox (see {@link Outbox}). */
export interface OutboxEntry {
  /** The outbox's stream entry id. */
  readonly entry: string;
  /** The task's id (local part), also in its message. */
  readonly id: string;
  readonly message: string;
}

/**
 * The outbox of a broker that is not Redis (RabbitMQ). Tasks that a Redis script makes in the same
 * atomic step as a Redis write — a canvas member's continuation with its outcome, the next member of
 * a canvas with its start marker, a beat tick with its claim — cannot be published to the broker in
 * that step: the script writes them to the queue's outbox on Redis (`{q:<queue>}:outbox`), and the
 * caller publishes them (confirmed) and then deletes them. What a crash leaves in between is
 * published later by {@link relay}, which workers and beats run periodically; a task published twice
 * that way (the crash fell between the confirm and the delete) runs once: each publish of an outbox
 * entry is a copy with its own tag, and the first copy delivered claims the task (the others are
 * dropped unrun).
 */
export interface Outbox {
  /** Publishes entries just written to a queue's outbox, then deletes them. */
  send(queue: string, entries: readonly OutboxEntry[]): Promise<void>;
  /**
   * Publishes and deletes the entries of a queue's outbox older than `olderThanMs` (their writer
   * died, or could not reach the broker, before it published them). Resolves how many.
   */
  relay(queue: string, olderThanMs: number): Promise<number>;
}

/**
 * The producer's side of the broker. Each method resolves only once the broker has the task
 * (Redis: the write's reply; RabbitMQ: the publisher confirm), and rejects when nothing may have
 * been written.
 */
export interface Publisher {
  /**
   * The broker's outbox, when tasks cannot be written to the broker in a Redis script's atomic step
   * (RabbitMQ); `undefined` on Redis Streams, where such scripts write to the queue's stream itself.
   */
  readonly outbox: Outbox | undefined;
  /**
   * True when the broker names tasks that run at once (Redis Streams: the entry id); false when the
   * producer must give every publication a `localId` (RabbitMQ).
   */
  readonly mintsIds: boolean;
  /** Publishes one task without an idempotency key; resolves its local id. */
  publish(p: Publication): Promise<string>;
  /**
   * Publishes one task with an idempotency key: at most one task per key. Resolves the local id of
   * the task the key names, and `created: false` when that is an earlier task.
   */
  publishUnique(p: Publication): Promise<{ local: string; created: boolean }>;
  /**
   * Publishes many tasks of one queue (Redis: in one MULTI, all or none); resolves one
   * {@link Published} per item, in order.
   */
  publishMany(queue: string, items: readonly Publication[]): Promise<Published[]>;
  /**
   * The broker's own count and purge of a queue's waiting tasks, for a broker that keeps them out of
   * Redis (RabbitMQ); `undefined` on Redis Streams (its tasks are counted and purged on Redis).
   */
  readonly waiting?: WaitingTasks | undefined;
}

/** A queue's waiting tasks as a broker that keeps them (RabbitMQ) counts and purges them. */
export interface WaitingTasks {
  /** Tasks ready in the queue (RabbitMQ: its message count; not those pushed to a worker). */
  count(queue: string): Promise<number>;
  /** Deletes the tasks ready in the queue; resolves how many went. */
  purge(queue: string): Promise<number>;
}

/** One task handed to a worker. */
export interface Delivery {
  readonly queue: string;
  /** The broker's id of this delivery (the stream entry id). */
  readonly entry: string;
  /** The entry's fields on the wire (see src/wire/fields.ts); the message is read from them. */
  readonly fields: readonly string[];
  /** Times this task has been delivered, this time included. */
  readonly deliveries: number;
  /**
   * The task's priority level (0 to 3): where it was delivered from. On Redis Streams `entry` is
   * then the entry's reference `<entry id>p<level>` (src/wire/priority.ts) for levels above 0.
   */
  readonly level: number;
  /**
   * What control messages (revoke, cancel) name this delivery by, when it is not its entry: on
   * RabbitMQ the task's id (its message id), since entries are the worker's own.
   */
  readonly controlKey?: string | undefined;
}

/** What became of one delivery, for {@link Broker.settle}. */
export interface Settlement {
  /** The delivery's entry id. */
  entry: string;
  /** The task's local id (the entry id unless it came from the delayed set or a hand-back). */
  id: string;
  /** The encoded task record to store under the task's result key. */
  record: string;
  /**
   * `done`: record only; `retry`: park `payload` (a message) until `due`; `dead`: append `payload`
   * (a dead letter); `defer`: a rate limit held it back: park `payload` until `due`, no record.
   */
  outcome: 'done' | 'retry' | 'dead' | 'defer';
  /** The task id has a parked field that must go. */
  parked: boolean;
  /**
   * `done` and `retry`: store no record (the task says `storeResult: false`); the record rides in
   * the completion event only, for waiters.
   */
  dropRecord: boolean;
  due?: number | undefined;
  payload?: string | undefined;
  /** The delivery's count when this worker claimed it (its attempt's fence): recorded only if still so. */
  deliveries: number;
  /**
   * A canvas member's reference (its message's meta `c`); `undefined` for every other task. With a
   * final outcome (`done`, `dead`) the broker appends the member's continuation (an internal
   * `tasuki.canvas` message carrying the reference and the record) to the member's queue in the same
   * atomic step as the outcome, so a chord's counter can neither miss a member nor count a fenced-out
   * attempt (see docs/canvas.md). A broker that is not Redis writes it to the queue's {@link Outbox}
   * in that step instead, and publishes it from there.
   */
  canvas?: string | undefined;
}

/** A delivery given back so another worker runs it at once. */
export interface HandBack {
  entry: string;
  id: string;
  /** The message, carrying the task id. */
  message: string;
}

export interface Broker {
  /** Makes each queue ready to be served (e.g. its consumer group). Works at OOM once they exist. */
  prepare(queues: readonly string[]): Promise<void>;
  /** Waits up to `blockMs` for at most `count` new deliveries across the queues. */
  fetch(queues: readonly string[], consumer: string, count: number, blockMs: number): Promise<Delivery[]>;
  /** Ends a fetch in progress at once (it resolves empty). */
  interruptFetch(): Promise<void>;
  /**
   * Stops handing this worker new deliveries of `queue` (the queue was paused, for every worker:
   * src/control/): later fetches leave it out, and a fetch in progress that may return some of it
   * ends now. Deliveries already handed out are the worker's to give back. Redis Streams leaves the
   * stream out of XREADGROUP; a push broker (RabbitMQ) cancels its consumer on the queue
   * (basic.cancel), so the server stops pushing, and consumes again on {@link resume}.
   */
  pause(queue: string): Promise<void>;
  /** Hands this worker deliveries of `queue` again (see {@link pause}). */
  resume(queue: string): Promise<void>;
  /**
   * Records one queue's finished deliveries in one atomic step — those still pending at the delivery
   * count `consumer` claimed them at (fenced attempts); rejects if nothing was recorded. Resolves the
   * entries fenced out: taken over by another worker meanwhile (or gone), their outcome not recorded.
   */
  settle(queue: string, consumer: string, settlements: readonly Settlement[]): Promise<string[]>;
  /** Renews this consumer's claim on its deliveries; resolves those it no longer holds. */
  renew(queue: string, consumer: string, entries: readonly string[]): Promise<string[]>;
  /** Takes over deliveries idle longer than `idleMs` (their worker died). */
  reclaim(queue: string, consumer: string, idleMs: number, count: number): Promise<Delivery[]>;
  /**
   * Leaves deliveries this worker cannot run (an unknown task, a newer format) for another worker:
   * at once reclaimable, and not counted as deliveries. Resolves how many were still held.
   */
  release(queue: string, consumer: string, idleMs: number, deliveries: readonly Delivery[]): Promise<number>;
  /**
   * Lets go of deliveries whose task a revoke took from this worker (its record is written): not
   * run further, not recorded, not given back. Redis Streams has nothing to do (the revoke
   * acknowledged and deleted the entry); RabbitMQ acks the messages.
   */
  discard(queue: string, deliveries: readonly Delivery[]): Promise<void>;
  /** Gives deliveries this consumer still holds back to the queue; resolves how many went back. */
  handBack(queue: string, consumer: string, tasks: readonly HandBack[]): Promise<number>;
  /** Moves due delayed tasks to the queue; resolves how many moved and the next due time (or -1). */
  promote(queue: string, now: number, limit: number): Promise<{ moved: number; next: number }>;
  /**
   * Forgets consumers that hold nothing and have been idle at least `idleMs` (only the one named
   * `only`, when given: a worker leaving at stop); resolves their names.
   */
  forgetIdleConsumers(queue: string, idleMs: number, only?: string): Promise<string[]>;
  /**
   * The queue has tasks on these priority levels (above 0): from now on hand this worker their
   * deliveries too, higher levels first (the worker learns of new levels from the queue's control
   * stream, and at start). Idempotent; a queue never told of a level costs what it did before.
   */
  useLevels(queue: string, levels: readonly number[]): Promise<void>;
  /** Closes the broker's connections. */
  close(): Promise<void>;
}
