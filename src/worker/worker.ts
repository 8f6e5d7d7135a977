/**
 * The worker: its lifecycle and the path of a task through it. Its parts live beside it — how they
 * open and close (parts.ts), options (options.ts), the fetch loop (fetcher.ts), what it holds
 * (holdings.ts), one attempt (runner.ts), recording outcomes (completer.ts), claims (claims.ts),
 * promotion (promoter.ts) — and it talks to Redis only through the broker contract (src/broker).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Delivery } from '../broker/broker.js';
import { describeBroker } from '../broker/choice.js';
import type { ControlHost } from '../control/follower.js';
import { CancelledError, RevokedError, TasukiError } from '../errors.js';
import { TaskEvents } from '../events/event-map.js';
import type { Logger } from '../log/logger.js';
import { within } from '../util/within.js';
import type { ClaimHost } from './claims.js';
import type { FetchHost } from './fetcher.js';
import { abortHeld, Holdings, type Held } from './holdings.js';
import { emitAttempt, emitStarted } from './events.js';
import { deleteFinishedPayloads } from './payload-cleanup.js';
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from './options.js';
import {
  countOutcome,
  discardOutcomes,
  handBackMessages,
  logOutcome,
  noOutcomes,
  type OutcomeCounts,
} from './outcomes.js';
import {
  closeParts,
  openParts,
  REDIS_WAIT_MS,
  runnerSettings,
  type Running,
  type WorkerHost,
} from './parts.js';
import { cancelUnstarted, runAttempt, type Attempt, type RunnerSettings } from './runner.js';

export type { WorkerOptions } from './options.js';
export type { WorkerHost } from './parts.js';

/**
 * Runs an app's tasks from its queues: fetches in batches, runs up to `concurrency` handlers at once,
 * records finished attempts with one call per batch, renews its claims, takes over tasks of dead
 * workers, promotes delayed tasks, and on stop hands back what it has not started. Emits a task
 * event per finished attempt (`worker.on('succeeded', e => ...)`; see src/events/event-map.ts).
 */
export class Worker extends TaskEvents implements ClaimHost, FetchHost, ControlHost {
  readonly name: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  private readonly options: ResolvedWorkerOptions;
  private readonly log: Logger;
  private readonly logInfo: boolean;
  private readonly settings: RunnerSettings;
  private readonly holdings: Holdings;
  private parts: Running | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private active = 0;
  private idle: (() => void) | undefined;
  /** Tasks a stop could neither finish nor hand back (Redis away): they recover after claimIdle. */
  private abandoned = 0;
  /** Attempts finished by this worker, by what became of them. */
  readonly counts: OutcomeCounts = noOutcomes();

  constructor(
    private readonly app: WorkerHost,
    options: WorkerOptions = {},
  ) {
    super();
    this.options = resolveWorkerOptions(options, app.queues);
    this.queues = this.options.queues;
    this.concurrency = this.options.concurrency;
    this.name = this.options.name ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.log = (this.options.logger ?? app.log).child({ worker: this.name });
    this.logInfo = this.log.isLevelEnabled('info');
    this.settings = runnerSettings(app, this.options, this.name, this.log);
    this.holdings = new Holdings(this.queues);
    // The app option `events: true`: this worker's events are published on the queues' channels.
    app.lifecycle?.followAttempts(this);
    this.listenerErrors = (err, event) => this.log.error({ err, event }, 'a task event listener threw');
  }

  /** Connects, makes sure each queue can be served (its consumer group exists), and starts fetching. */
  start(): Promise<void> {
    if (this.stopping)
      return Promise.reject(new TasukiError('E_CONFIG', 'this worker was stopped; create a new one'));
    this.starting ??= this.startParts().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async startParts(): Promise<void> {
    const parts = await openParts(this.app, this, this.options, this.log, this.recorded);
    this.parts = parts;
    this.settings.limiter = parts.limiter;
    this.settings.progress = parts.progress;
    // Claims must be renewed off the event loop before the first task runs: wait for the thread.
    parts.heartbeat.start();
    await parts.heartbeat.started();
    // Pauses are known before the first fetch, so a paused queue gives this worker nothing.
    await parts.control.start();
    for (const loop of parts.loops) loop.start();
    parts.fetcher.start();
    this.log.info(
      {
        queues: this.queues,
        tasks: this.app.taskNames(),
        concurrency: this.concurrency,
        redis: this.app.describeRedis(),
        ...(this.app.broker?.kind === 'rabbitmq' ? { broker: describeBroker(this.app.broker) } : {}),
      },
      'worker started',
    );
  }

  /** Tasks running now. */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Tasks this worker holds now: fetched and waiting to run, running, or finished with their
   * outcome not yet recorded in Redis. Zero once every task it took has its outcome recorded.
   */
  get holding(): number {
    return this.holdings.count;
  }

  /** @internal Deliveries held now (for the fetch loop). */
  heldCount(): number {
    return this.holdings.busy(this.options.concurrency + this.options.prefetch);
  }

  /** @internal Entry ids held for a queue (for the heartbeat). */
  held(queue: string): string[] {
    return this.holdings.entries(queue);
  }

  /** @internal Room for more deliveries (for the reclaimer). */
  room(): number {
    return this.parts && !this.stopping
      ? this.options.concurrency + this.options.prefetch - this.heldCount()
      : 0;
  }

  /** @internal The broker could not be read: hold reclaims until owners had time to renew. */
  outage(): void {
    this.parts?.reclaimer.outage();
  }

  /** @internal Entries another worker took over: stop them and never record them. */
  lost(queue: string, entries: string[]): void {
    for (const entry of entries) {
      const held = this.holdings.get(queue, entry);
      if (!held) continue;
      this.log.warn({ queue, entry }, 'lost the claim on a task (another worker took it over); dropping it');
      this.holdings.drop(held, new TasukiError('E_LOST', 'another worker took this task over'));
    }
    this.parts?.fetcher.wake();
  }

  /** @internal Deliveries taken over from a dead worker. */
  adopt(deliveries: Delivery[]): void {
    const adopted = deliveries.filter((d) => this.holdings.take(d));
    if (adopted.length) {
      this.log.info({ count: adopted.length }, 'took over tasks of a dead worker');
      this.parts?.heartbeat.grew(adopted);
    }
    this.pump();
  }

  /** @internal New deliveries from the fetch loop. */
  deliver(deliveries: Delivery[]): void {
    // Taken as they are (no copy): the broker made each delivery for this worker alone.
    for (const d of deliveries) this.holdings.take(d);
    // Before any of them starts: a handler may block the event loop from its first instant.
    this.parts?.heartbeat.grew(deliveries);
    if (this.parts?.control.engaged) this.screen(this.parts, deliveries);
    this.pump();
  }

  /** Queues paused now (for every worker: `app.pause`), as this worker last heard. */
  get paused(): readonly string[] {
    return this.parts?.control.pausedQueues() ?? [];
  }

  /** @internal A queue was paused or resumed (from the control stream). */
  pausedChanged(queue: string, paused: boolean): void {
    const parts = this.parts;
    if (!parts) return;
    this.log.info({ queue }, paused ? 'queue paused: taking no new tasks from it' : 'queue resumed');
    if (!paused) {
      void parts.broker.resume(queue).then(() => parts.fetcher.wake());
      return;
    }
    void parts.broker.pause(queue).catch(() => undefined);
    // Fetched and not started: back to the queue, where they wait for the resume (running ones finish).
    this.handBackPaused(parts);
  }

  /**
   * New deliveries while something is paused, revoked or cancelled: a read that was in flight when
   * a queue was paused brought some of it (back they go now), or a revoke or cancel was heard before
   * the delivery it is about arrived (it is dealt with now, not when it would start).
   */
  private screen(parts: Running, deliveries: readonly Delivery[]): void {
    for (const d of deliveries) {
      const op = parts.control.recentOp(d.queue, d.controlKey ?? d.entry);
      const held = op && this.holdings.get(d.queue, d.entry);
      if (held && this.holdings.unready(held)) this.dropControlled(held, op, 'a ' + op);
    }
    this.handBackPaused(parts);
  }

  /** A revoked or cancelled delivery that has not started: never runs. */
  private dropControlled(held: Held, op: 'revoke' | 'cancel', by: string): void {
    if (op === 'revoke') {
      this.counts.revoked++;
      this.dropRevoked(held, by);
    } else {
      this.finish(cancelUnstarted(held, this.settings, by));
    }
  }

  /**
   * Drops a revoked delivery (if it started, its signal aborts and its outcome is not recorded) and
   * lets the broker forget it (RabbitMQ acks it: the revoke recorded it).
   */
  private dropRevoked(held: Held, by: string): void {
    this.holdings.drop(held, new RevokedError(by));
    void this.parts?.broker
      .discard(held.queue, [held])
      .catch((err: unknown) => this.log.warn({ err }, 'could not let go of a revoked task'));
  }

  /** Hands back every unstarted delivery of a paused queue. */
  private handBackPaused(parts: Running): void {
    for (const queue of parts.control.pausedQueues()) {
      const unstarted = this.holdings.takeUnstartedOf(queue);
      if (unstarted.length) void this.handBack(parts, unstarted, 'paused');
    }
  }

  /**
   * @internal The queue has streams for these priority levels (from the control stream, or at
   * start): the broker reads them from now on.
   */
  levelsFound(queue: string, levels: readonly number[]): void {
    const parts = this.parts;
    if (!parts) return;
    void parts.broker
      .useLevels(queue, levels)
      .then(() => parts.fetcher.wake())
      .catch((err: unknown) =>
        this.log.warn({ queue, levels, err }, 'could not read the priority levels of a queue'),
      );
  }

  /** @internal A task a worker fetched was revoked or cancelled (from the control stream). */
  controlled(queue: string, entry: string, op: 'revoke' | 'cancel', by: string): void {
    // `entry` is what the control message names: the entry (Redis Streams) or the task id (RabbitMQ).
    const held = this.holdings.get(queue, entry) ?? this.holdings.byControlKey(queue, entry);
    if (!held || held.dropped) return;
    if (op === 'revoke') {
      // Its record says revoked and the broker no longer has it pending: drop it (if it started, its
      // signal aborts and its outcome, fenced out, is not recorded).
      this.counts.revoked++;
      this.log.info({ queue, entry, by }, 'task revoked; dropped');
      this.dropRevoked(held, by);
      this.parts?.fetcher.wake();
      return;
    }
    if (held.finished || held.cancelledBy !== undefined) return; // too late, or said already
    if (this.holdings.unready(held)) {
      this.finish(cancelUnstarted(held, this.settings, by));
      this.parts?.fetcher.wake();
      return;
    }
    held.cancelledBy = by;
    abortHeld(held, new CancelledError(by));
  }

  /**
   * A delivery about to start that must not: its queue is paused (handed back), or it was revoked
   * or cancelled before this worker had it (the control message came first). Only looked at while
   * something is paused or was revoked or cancelled lately.
   */
  private heldBack(parts: Running, held: Held): boolean {
    const op = parts.control.recentOp(held.queue, held.controlKey ?? held.entry);
    if (op !== undefined) {
      this.dropControlled(held, op, 'a ' + op);
      return true;
    }
    if (parts.control.isPaused(held.queue)) {
      void this.handBack(parts, [held], 'paused');
      return true;
    }
    return false;
  }

  private pump(): void {
    const parts = this.parts;
    if (!parts || this.stopping) return;
    const control = parts.control;
    while (this.active < this.concurrency) {
      const next = this.holdings.next();
      if (!next) return;
      if (control.engaged && this.heldBack(parts, next)) continue;
      this.active++;
      const running = runAttempt(this.app, next, this.settings);
      // The message was decoded by now (runAttempt decodes before its first await).
      if (this.listening && this.hasListeners('started')) emitStarted(this, next, this.name);
      void running.then(this.settle);
    }
  }

  /** After each attempt (runAttempt never rejects): hand it to the completer, start the next task. */
  private readonly settle = (attempt: Attempt): void => {
    this.finish(attempt);
    this.active--;
    this.pump();
    this.parts?.fetcher.wake();
    if (this.active === 0) this.idle?.();
  };

  /**
   * The broker took these outcomes: let their deliveries go. Those in `stale` were not recorded:
   * another worker took the task over while it ran here (fenced attempts).
   */
  private readonly recorded = (attempts: readonly Attempt[], stale: ReadonlySet<string>): void => {
    for (const a of attempts) this.holdings.release(a.held);
    const done = stale.size ? attempts.filter((a) => !stale.has(a.held.entry)) : attempts;
    if (stale.size) discardOutcomes(this.counts, this.log, attempts, stale);
    // Events once outcomes are in Redis (discarded stale ones have none): a listener that looks the
    // task up finds its record.
    if (this.listening) for (const a of done) emitAttempt(this, a);
    if (this.app.payloadStore) deleteFinishedPayloads(this.app.payloadStore, done, this.log);
    this.parts?.fetcher.wake();
  };

  private finish(attempt: Attempt): void {
    const held = attempt.held;
    // The last progress report goes out before the outcome (same connection, so in that order).
    held.progress?.end(!this.holdings.isDropped(held));
    if (this.holdings.isDropped(held)) return;
    countOutcome(this.counts, attempt);
    if (attempt.outcome === 'release') {
      // Left pending, idle and uncounted: any worker's reclaimer may take it at once.
      this.holdings.release(held);
      if (this.listening) emitAttempt(this, attempt);
      void this.parts?.broker
        .release(held.queue, this.name, this.options.claimIdleMs, [held])
        .catch((err: unknown) =>
          this.log.warn({ err }, 'could not release a task; it is reclaimed after claimIdle'),
        );
    } else {
      this.holdings.markFinished(held);
      this.parts?.completer.add(attempt);
      if (attempt.outcome === 'defer') this.parts?.promoter.wakeBy(attempt.due as number);
    }
    logOutcome(this.log, this.logInfo, attempt);
  }

  /**
   * Hands held deliveries back to their queue as new entries, so other workers run them at once;
   * resolves their task ids. Redis away (past {@link REDIS_WAIT_MS}): none, and they are counted
   * as abandoned (they recover after claimIdle).
   */
  private async handBack(parts: Running, list: Held[], what: string): Promise<string[]> {
    const send = async (): Promise<string[]> => {
      const { byQueue, ids, taken } = handBackMessages(list);
      for (const held of taken)
        this.holdings.drop(held, new TasukiError('E_LOST', 'handed back at shutdown'));
      for (const [queue, tasks] of byQueue) await parts.broker.handBack(queue, this.name, tasks);
      return ids;
    };
    return within(send(), REDIS_WAIT_MS, 'hand-back').catch((err: unknown) => {
      this.abandoned += list.length;
      this.log.error({ err }, `could not hand back ${what} tasks; they recover after claimIdle`);
      return [];
    });
  }

  /**
   * Stops gracefully: no more fetching; tasks fetched but not started are handed back at once;
   * running tasks get the grace period to finish, after which they are aborted and handed back
   * too; finished attempts are recorded; connections close. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const parts = this.parts;
    if (!parts) return;
    const started = Date.now();
    await parts.fetcher.stop();
    const handedBack = await this.handBack(parts, this.holdings.takeUnstarted(), 'unstarted');
    let aborted: string[] = [];
    if (this.active > 0) {
      const timedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(
          () => resolve(true),
          Math.max(0, this.options.graceMs - (Date.now() - started)),
        );
        this.idle = () => {
          clearTimeout(timer);
          resolve(false);
        };
      });
      if (timedOut) {
        // Still running: held, and not finished (finished ones wait for their outcome to be recorded).
        const running = this.holdings.all().filter((h) => !this.holdings.isFinished(h));
        aborted = await this.handBack(parts, running, 'running');
        if (aborted.length) {
          this.log.warn(
            { tasks: aborted },
            'tasks still running after the grace period were aborted and handed back',
          );
        }
      }
    }
    this.settings.isolation?.close();
    await closeParts(parts, this.queues, this.name, this.log);
    this.log.info(
      {
        ...this.counts,
        handedBack: handedBack.length + aborted.length,
        aborted: aborted.length,
        abandoned: this.abandoned,
        ms: Date.now() - started,
      },
      'worker stopped',
    );
  }
}
