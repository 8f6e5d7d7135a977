/**
 * The worker's heartbeat off its event loop: a `node:worker_threads` thread
 * (./heartbeat-thread-main.ts) with a Redis connection of its own renews the worker's claims, so a
 * handler that keeps the event loop busy (a synchronous loop) does not let its task be taken over
 * by another worker while this one is alive and finishing it.
 *
 * The worker writes the entries it holds per queue on a board shared with the thread
 * (./heartbeat-thread-shared.ts): at once when its holdings grow (before the new tasks start, so a
 * task that blocks the event loop from its first instant is renewed), and every half interval
 * otherwise (so what it let go stops being renewed). The thread renews the entries last written
 * every interval, whatever the event loop does, and posts back those it found lost. Without the
 * thread (connection settings that cannot be passed to a thread, a thread that cannot start or that
 * died) the in-process {@link Heartbeat} renews the claims, as before.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { Broker, Delivery } from '../broker/broker.js';
import type { ConnectionOptions } from '../connection/connect.js';
import type { Logger } from '../log/logger.js';
import { Incident } from '../util/incident.js';
import { Heartbeat, type ClaimHost, type ClaimRenewer } from './claims.js';
import {
  HeldBoard,
  type FromThread,
  type ThreadData,
  type ThreadError,
  type ToThread,
} from './heartbeat-thread-shared.js';
import { startThread, uncloneable } from './heartbeat-thread-start.js';

/** Fewest appended entries after which the board is written whole again. */
const MIN_REWRITE = 256;
/** How long stop() waits for the thread to end its round and close its connection, ms. */
const STOP_WAIT_MS = 2000;
/** Longest {@link ThreadHeartbeat.started} waits for the thread; the in-process heartbeat runs meanwhile. */
const START_WAIT_MS = 10_000;

function toError(e: ThreadError): Error {
  return Object.assign(new Error(e.message), { name: e.name }, e.code ? { code: e.code } : {});
}

/** Settings of a {@link ThreadHeartbeat}. */
export interface ThreadHeartbeatSettings {
  /** The app's connection settings; without them the heartbeat runs in-process. */
  connection: ConnectionOptions | undefined;
  /** The app's key prefix. */
  prefix: string;
}

/**
 * Renews the worker's claims from a thread of its own (see the file comment), with the shape of
 * {@link Heartbeat}: start, stop, runOnce. Until the thread is ready, and whenever it cannot run,
 * the in-process heartbeat renews them.
 */
export class ThreadHeartbeat implements ClaimRenewer {
  private readonly inProcess: Heartbeat;
  private readonly incident: Incident;
  private thread: Thread | undefined;
  private board = HeldBoard.create();
  /** Index of each served queue in the thread's list, as the board names it. */
  private readonly queueIndex: ReadonlyMap<string, number>;
  /** Entries appended to the board since it was last written whole. */
  private appended = 0;
  /** Appended entries after which the board is written whole again (dropping what was let go). */
  private rewriteAfter = MIN_REWRITE;
  private exited: Promise<void> | undefined;
  private ready = false;
  private active = false;
  private warned = false;
  private timer: NodeJS.Timeout | undefined;
  private nextRequest = 0;
  private readonly requests = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private readonly checking = new Set<Promise<void>>();
  private markStarted!: () => void;
  private readonly whenStarted = new Promise<void>((resolve) => (this.markStarted = resolve));
  private startTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly host: ClaimHost,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly settings: ThreadHeartbeatSettings,
  ) {
    this.inProcess = new Heartbeat(broker, host, log, intervalMs);
    this.incident = new Incident(log, 'renewing claims (heartbeat thread)');
    this.queueIndex = new Map(host.queues.map((queue, i) => [queue, i]));
  }

  /** True while the thread renews the claims (not the event loop). */
  get threaded(): boolean {
    return this.ready;
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.inProcess.start();
    const connection = this.settings.connection;
    const why = connection ? uncloneable(connection) : 'the app gives no connection settings for it';
    if (!connection || why) return this.fallBack(why);
    const data: ThreadData = {
      connection,
      prefix: this.settings.prefix,
      consumer: this.host.name,
      queues: [...this.host.queues],
      intervalMs: this.intervalMs,
      board: this.board.buffer,
    };
    let thread: Thread;
    try {
      thread = startThread(data);
    } catch (err) {
      return this.fallBack(`the thread could not start (${String(err)})`);
    }
    this.startTimer = setTimeout(() => {
      this.log.warn(
        { waitedMs: START_WAIT_MS },
        'the heartbeat thread is not ready yet; claims are renewed on the event loop until it is',
      );
      this.markStarted();
    }, START_WAIT_MS);
    this.startTimer.unref();
    thread.unref();
    this.thread = thread;
    this.exited = new Promise((resolve) => thread.once('exit', () => resolve()));
    thread.on('message', (m: FromThread) => this.received(thread, m));
    thread.on('error', (err) => this.failed(thread, `it failed (${err.message})`));
    thread.on('exit', (code) => this.failed(thread, `it exited (code ${code})`));
    this.publish();
    this.timer = setInterval(() => this.publish(), Math.max(5, Math.floor(this.intervalMs / 2)));
    this.timer.unref();
  }

  /**
   * Resolves once the thread renews the claims, or once it is clear that it cannot (then the
   * in-process heartbeat does), or after {@link START_WAIT_MS} (the in-process heartbeat renews
   * until the thread is ready).
   */
  started(): Promise<void> {
    return this.whenStarted;
  }

  /**
   * The worker's holdings grew: the thread renews the new entries from now on. They are appended to
   * the board (a fetch costs its own ids, not every id held); once as many were appended as were
   * held at the last whole write, the board is written whole, so what was let go stops being renewed.
   */
  grew(added: readonly Delivery[]): void {
    if (!this.thread) return;
    this.appended += added.length;
    if (this.appended > this.rewriteAfter) return this.publish();
    let text = '';
    let current = -1;
    for (const delivery of added) {
      const i = this.queueIndex.get(delivery.queue) ?? -1;
      if (i !== current) text += ` #${(current = i)}`;
      text += ` ${delivery.entry}`;
    }
    if (!this.board.append(text)) this.publish();
  }

  /** One round: by the thread when it runs, else in-process. */
  async runOnce(): Promise<number> {
    const thread = this.thread;
    if (!thread || !this.ready) return this.inProcess.runOnce();
    this.publish();
    const id = ++this.nextRequest;
    try {
      await new Promise<void>((resolve, reject) => {
        this.requests.set(id, { resolve, reject });
        thread.postMessage({ type: 'renew', id } satisfies ToThread);
      });
    } catch (err) {
      // The thread stopped under the request: this round is the in-process heartbeat's.
      if (this.thread === thread || !this.active) throw err;
      return this.inProcess.runOnce();
    }
    await Promise.all(this.checking);
    return this.intervalMs;
  }

  /** Stops renewing: the thread ends its round, closes its connection and ends. */
  async stop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.timer);
    clearTimeout(this.startTimer);
    this.markStarted();
    const thread = this.thread;
    const exited = this.exited;
    this.thread = undefined;
    this.ready = false;
    this.settleRequests(new Error('the heartbeat stopped'));
    if (thread && exited) {
      thread.postMessage({ type: 'stop' } satisfies ToThread);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_WAIT_MS))),
      ]);
      clearTimeout(timer);
      if (late) await thread.terminate();
    }
    await this.inProcess.stop();
    await Promise.all(this.checking);
  }

  /** Writes the entries held now, per queue, on the board (a larger one if they outgrew it). */
  private publish(): void {
    const thread = this.thread;
    if (!thread) return;
    const lists = this.host.queues.map((q) => this.host.held(q));
    const held = lists.reduce((n, list) => n + list.length, 0);
    this.appended = 0;
    this.rewriteAfter = Math.max(MIN_REWRITE, held);
    const text = HeldBoard.text(lists);
    if (this.board.write(text)) return;
    // Room for the appends until the next whole write as well.
    const board = HeldBoard.create(4 * text.length + 1024);
    board.write(text);
    this.board = board;
    thread.postMessage({ type: 'board', buffer: board.buffer } satisfies ToThread);
  }

  private received(thread: Thread, m: FromThread): void {
    if (thread !== this.thread) return;
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.log.debug('renewing claims from a heartbeat thread');
        void this.inProcess.stop();
        clearTimeout(this.startTimer);
        this.markStarted();
        break;
      case 'start-failed':
        this.failed(thread, `it could not connect to Redis (${m.error.message})`);
        break;
      case 'lost':
        this.check(m.queue, m.entries);
        break;
      case 'failed':
        this.incident.fail(toError(m.error));
        break;
      case 'ok':
        this.incident.ok();
        break;
      case 'renewed': {
        const request = this.requests.get(m.id);
        this.requests.delete(m.id);
        if (m.error) request?.reject(toError(m.error));
        else request?.resolve();
        break;
      }
    }
  }

  /**
   * Entries the thread found lost, checked again on the worker's own connection before they are
   * dropped: the thread's connection races the worker's, so an entry whose outcome the worker has
   * just recorded (acknowledged in Redis, its reply not yet read) looks lost to the thread. The
   * check is ordered after that write on the worker's connection, and the drop waits until its
   * reply has been handled (setImmediate), so only entries really taken over are dropped.
   */
  private check(queue: string, entries: string[]): void {
    const held = new Set(this.host.held(queue));
    const still = entries.filter((e) => held.has(e));
    if (still.length === 0) return;
    const done: Promise<void> = this.broker
      .renew(queue, this.host.name, still)
      .then(
        (lost) =>
          new Promise<void>((resolve) =>
            setImmediate(() => {
              if (lost.length) this.host.lost(queue, lost);
              resolve();
            }),
          ),
        () => undefined, // Redis away: the thread's next round reports them again
      )
      .finally(() => this.checking.delete(done));
    this.checking.add(done);
  }

  /** The thread cannot renew (any more): the in-process heartbeat takes over. */
  private failed(thread: Thread, why: string): void {
    if (thread !== this.thread) return;
    this.thread = undefined;
    this.ready = false;
    clearInterval(this.timer);
    this.settleRequests(new Error(`the heartbeat thread stopped: ${why}`));
    void thread.terminate();
    this.fallBack(why);
    if (this.active) this.inProcess.start();
  }

  private settleRequests(err: Error): void {
    for (const request of this.requests.values()) request.reject(err);
    this.requests.clear();
  }

  private fallBack(why: string | undefined): void {
    clearTimeout(this.startTimer);
    this.markStarted();
    if (this.warned) return;
    this.warned = true;
    this.log.warn(
      { reason: why },
      'claims are renewed on the event loop, not from a heartbeat thread: a handler that blocks the ' +
        'event loop longer than claimIdle can have its task taken over by another worker',
    );
  }
}
