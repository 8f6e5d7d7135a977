import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { connect } from '../connection/connect.js';
import { OptionsError, TasukiError, UnknownQueueError, type FieldIssue } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Tasuki } from '../app/app.js';
import { formatTaskId } from '../wire/ids.js';
import { decodeMessage, encodeMessage, MESSAGE_FIELD } from '../wire/message.js';
import { GROUP } from '../results/lookup.js';
import * as scripts from '../scripts/catalogue.js';
import { toMs, type Duration } from '../util/duration.js';
import { Incident } from '../util/incident.js';
import { Heartbeat, Reclaimer, type ClaimHost } from './claims.js';
import { Completer } from './completer.js';
import { Promoter } from './promoter.js';
import {
  abortAttempt,
  fieldValue,
  runAttempt,
  type Attempt,
  type Fetched,
  type RunnerSettings,
} from './runner.js';

/** Options of a worker. Every field is optional; defaults are listed. */
export interface WorkerOptions {
  /** Queues to serve (default: every queue of the app). */
  queues?: readonly string[];
  /** Tasks run at once (default 10). */
  concurrency?: number;
  /** Tasks fetched ahead of free slots, so the next task is at hand (default max(concurrency, 16)). */
  prefetch?: number;
  /** Longest a fetch blocks waiting for work, ms (default 2000). */
  blockMs?: number;
  /** Longest sleep between promotions of delayed tasks, ms (default 500). */
  promoteIntervalMs?: number;
  /**
   * A task held by a worker that sent no heartbeat for this long is taken over by another worker
   * (default `30s`). Live workers renew their claims every third of it, however long a task runs.
   */
  claimIdle?: Duration;
  /** How often to look for tasks of dead workers (default: half of claimIdle, at most 5 s). */
  reclaimInterval?: Duration;
  /** Deliveries after which a task that keeps killing its workers is dead-lettered (default 5). */
  maxDeliveries?: number;
  /** On stop, how long running tasks may take to finish (default `25s`; ECS waits 30 s). */
  grace?: Duration;
  /** Consumer name (default `<host>:<pid>:<random>`). */
  name?: string;
  /** Logger (default: the app's). */
  logger?: Logger;
}

/**
 * Runs an app's tasks from its queues: reads each queue's stream through the consumer group
 * `tasuki` in batches, runs up to `concurrency` handlers at once, records finished attempts with one
 * script call per batch, renews its claims, takes over tasks of dead workers, promotes delayed tasks,
 * and on stop hands back what it has not started.
 */
export class Worker implements ClaimHost {
  readonly name: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  private readonly prefetch: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly reclaimMs: number;
  private readonly maxDeliveries: number;
  private readonly graceMs: number;
  private readonly log: Logger;
  private readonly logInfo: boolean;
  private readonly settings: RunnerSettings;
  private main: Redis | undefined;
  private blocking: Redis | undefined;
  private blockingId: number | undefined;
  private completer: Completer | undefined;
  private loops: { stop(): Promise<void>; start(): void }[] = [];
  private heartbeat: Heartbeat | undefined;
  private readonly ready: Fetched[] = [];
  /** Entries held per queue: fetched and not yet recorded. */
  private readonly holding = new Map<string, Map<string, Fetched>>();
  /** Entries that must not be recorded: lost to another worker, or handed back. */
  private readonly dropped = new WeakSet<Fetched>();
  private active = 0;
  private running = false;
  private stopping: Promise<void> | undefined;
  private fetchLoop: Promise<void> | undefined;
  private readonly reads = new Set<Promise<void>>();
  private slotFreed: (() => void) | undefined;
  private idle: (() => void) | undefined;
  private readonly streamKeys: string[];
  private readonly queueByKey = new Map<string, string>();
  /** Attempts finished by this worker, by what became of them. */
  readonly counts = { succeeded: 0, failed: 0, retried: 0, expired: 0 };

  constructor(
    private readonly app: Tasuki,
    private readonly options: WorkerOptions = {},
  ) {
    const issues: FieldIssue[] = [];
    const int = (path: string, v: number, min: number): number => {
      if (!Number.isInteger(v) || v < min) issues.push({ path, message: `must be an integer >= ${min}` });
      return v;
    };
    const dur = (path: string, v: Duration | undefined, dflt: number): number => {
      const ms = v === undefined ? dflt : toMs(v);
      if (ms === undefined || ms <= 0) {
        issues.push({ path, message: `${JSON.stringify(v)} is not a positive duration` });
        return dflt;
      }
      return ms;
    };
    this.concurrency = int('concurrency', options.concurrency ?? 10, 1);
    this.prefetch = int('prefetch', options.prefetch ?? Math.max(this.concurrency, 16), 0);
    this.blockMs = int('blockMs', options.blockMs ?? 2000, 1);
    this.claimIdleMs = dur('claimIdle', options.claimIdle, 30_000);
    this.reclaimMs = dur('reclaimInterval', options.reclaimInterval, Math.min(5000, this.claimIdleMs / 2));
    this.maxDeliveries = int('maxDeliveries', options.maxDeliveries ?? 5, 1);
    this.graceMs = dur('grace', options.grace, 25_000);
    if (issues.length) throw new OptionsError('worker options', issues, 'E_CONFIG');
    const queues = options.queues ?? app.queues;
    for (const q of queues) if (!app.queues.includes(q)) throw new UnknownQueueError(q, app.queues);
    this.queues = [...new Set(queues)];
    this.name = options.name ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.log = (options.logger ?? app.log).child({ worker: this.name });
    this.logInfo = this.log.isLevelEnabled('info');
    this.settings = { worker: this.name, maxDeliveries: this.maxDeliveries, log: this.log };
    this.streamKeys = this.queues.map((queue) => app.keys.stream.key({ queue }));
    this.streamKeys.forEach((k, i) => this.queueByKey.set(k, this.queues[i] as string));
    for (const q of this.queues) this.holding.set(q, new Map());
  }

  /** Connects, makes sure each queue's consumer group exists, and starts fetching. */
  async start(): Promise<void> {
    if (this.running) return;
    const url = this.app.redisUrl();
    if (!url) await this.app.redis(); // throws the app's "no Redis URL" error
    const base = { url: url as string, ...this.app.connectionOptions() };
    this.main = await connect({ ...base, clientName: 'tasuki:worker' });
    this.blocking = await connect({ ...base, clientName: 'tasuki:worker-fetch' });
    scripts.registerScripts(this.main);
    this.blockingId = Number(await this.blocking.client('ID'));
    await this.ensureGroups();
    await this.main.sadd(this.app.keys.queues.key({}), ...this.queues);
    this.completer = new Completer(this.main, this.app, this.log);
    const keys = this.app.keys;
    this.heartbeat = new Heartbeat(
      this.main,
      keys,
      this,
      this.log,
      Math.max(10, Math.floor(this.claimIdleMs / 3)),
    );
    this.loops = [
      new Promoter(this.main, keys, this.queues, this.log, this.options.promoteIntervalMs),
      new Reclaimer(this.main, keys, this, this.log, this.claimIdleMs, this.reclaimMs),
    ];
    this.running = true;
    this.heartbeat.start();
    for (const l of this.loops) l.start();
    this.fetchLoop = this.fetch();
    this.log.info({ queues: this.queues, concurrency: this.concurrency }, 'worker started');
  }

  private async ensureGroups(): Promise<void> {
    const main = this.main as Redis;
    for (const key of this.streamKeys) {
      try {
        await main.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (!(err instanceof Error && err.message.includes('BUSYGROUP'))) throw err;
      }
    }
  }

  private get capacity(): number {
    return this.concurrency + this.prefetch;
  }

  private get heldCount(): number {
    let n = 0;
    for (const m of this.holding.values()) n += m.size;
    return n;
  }

  /** @internal Entry ids held for a queue (for the heartbeat). */
  held(queue: string): string[] {
    return [...(this.holding.get(queue)?.keys() ?? [])];
  }

  /** @internal Room for more entries (for the reclaimer). */
  room(): number {
    return this.running ? this.capacity - this.heldCount : 0;
  }

  /** @internal Entries another worker took over: stop them and never record them. */
  lost(queue: string, entries: string[]): void {
    const map = this.holding.get(queue);
    for (const e of entries) {
      const f = map?.get(e);
      if (!f) continue;
      this.log.warn(
        { queue, entry: e },
        'lost the claim on a task (another worker took it over); dropping it',
      );
      this.drop(f, new TasukiError('E_LOST', 'another worker took this task over'));
    }
  }

  /** @internal Entries taken over from a dead worker. */
  adopt(queue: string, entries: scripts.ReclaimReply): void {
    for (const [entry, fields, deliveries] of entries) {
      if (this.holding.get(queue)?.has(entry)) continue;
      this.take({ queue, entry, fields, deliveries: Number(deliveries) });
    }
    if (entries.length) this.log.info({ queue, count: entries.length }, 'took over tasks of a dead worker');
    this.pump();
  }

  private take(f: Fetched): void {
    this.holding.get(f.queue)?.set(f.entry, f);
    this.ready.push(f);
  }

  private drop(f: Fetched, reason: Error): void {
    this.dropped.add(f);
    this.holding.get(f.queue)?.delete(f.entry);
    const i = this.ready.indexOf(f);
    if (i >= 0) this.ready.splice(i, 1);
    abortAttempt(f, reason);
    this.wakeFetch();
  }

  /** Lets a fetch loop waiting for room look again. */
  private wakeFetch(): void {
    const wake = this.slotFreed;
    this.slotFreed = undefined;
    wake?.();
  }

  /**
   * Fetches in batches of half the capacity, with up to two reads in flight, so the next batch is
   * on its way while the current one runs (no idle round trip between batches).
   */
  private async fetch(): Promise<void> {
    const incident = new Incident(this.log, 'fetching tasks');
    const batch = Math.max(1, Math.ceil(this.capacity / 2));
    let reserved = 0;
    while (this.running) {
      const room = this.capacity - this.heldCount - reserved;
      const idle = this.heldCount === 0 && reserved === 0;
      if (this.reads.size >= 2 || room <= 0 || (room < batch && !idle)) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      const count = Math.min(room, batch);
      reserved += count;
      const read = this.read(count, incident).finally(() => {
        reserved -= count;
        this.reads.delete(read);
        this.wakeFetch();
      });
      this.reads.add(read);
    }
    await Promise.all(this.reads);
  }

  private async read(count: number, incident: Incident): Promise<void> {
    let reply: [string, [string, string[]][]][] | null;
    try {
      reply = (await (this.blocking as Redis).xreadgroup(
        'GROUP',
        GROUP,
        this.name,
        'COUNT',
        count,
        'BLOCK',
        this.blockMs,
        'STREAMS',
        ...this.streamKeys,
        ...this.streamKeys.map(() => '>'),
      )) as [string, [string, string[]][]][] | null;
      incident.ok();
    } catch (err) {
      if (!this.running) return;
      incident.fail(err);
      if (err instanceof Error && err.message.includes('NOGROUP'))
        await this.ensureGroups().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
      return;
    }
    if (!reply) return;
    for (const [key, entries] of reply) {
      const queue = this.queueByKey.get(key) as string;
      // A null entry is one deleted while pending; nothing to run.
      for (const [entry, fields] of entries) if (fields) this.take({ queue, entry, fields, deliveries: 1 });
    }
    this.pump();
  }

  private pump(): void {
    while (this.running && this.active < this.concurrency && this.ready.length > 0) {
      const next = this.ready.shift() as Fetched;
      this.active++;
      void runAttempt(this.app, next, this.settings).then(this.settle);
    }
  }

  /** After each attempt (runAttempt never rejects): record it, then start the next task. */
  private readonly settle = (a: Attempt): void => {
    this.finish(a);
    this.active--;
    if (this.running) this.pump();
    this.wakeFetch();
    if (this.active === 0) this.idle?.();
  };

  private finish(a: Attempt): void {
    const f = a.fetched;
    if (this.dropped.has(f)) return;
    this.holding.get(f.queue)?.delete(f.entry);
    const r = a.record;
    (this.completer as Completer).add(a);
    if (a.outcome === 'retry') this.counts.retried++;
    else if (r.state === 'succeeded') this.counts.succeeded++;
    else if (r.state === 'expired') this.counts.expired++;
    else this.counts.failed++;
    // Log fields are built only when the line is written (succeeded lines are at info).
    if (r.state === 'succeeded' && !this.logInfo) return;
    const fields = {
      taskId: formatTaskId(a.local, f.queue),
      task: r.task,
      queue: f.queue,
      attempt: r.attempt,
      durationMs: r.finishedAt - r.startedAt,
    };
    if (a.outcome === 'retry') {
      this.log.warn({ ...fields, error: r.error, retryAt: r.retryAt }, 'task failed; will retry');
    } else if (r.state === 'succeeded') {
      this.log.info(fields, 'task succeeded');
    } else if (r.state === 'expired') {
      this.log.warn(fields, 'task expired before it started; not run');
    } else {
      this.log.error({ ...fields, error: r.error, reason: r.reason }, 'task failed; moved to dead letters');
    }
  }

  /** Tasks running now. */
  get inFlight(): number {
    return this.active;
  }

  /** Hands fetched entries back to the stream as new entries, so other workers run them at once. */
  private async handBack(list: Fetched[]): Promise<number> {
    const byQueue = new Map<string, { entry: string; id: string; message: string }[]>();
    for (const f of list) {
      let msg = f.message;
      if (!msg) {
        try {
          msg = decodeMessage(fieldValue(f.fields, MESSAGE_FIELD));
        } catch {
          continue; // undecodable: left pending; whoever reclaims it dead-letters it
        }
      }
      const id = msg.id ?? f.entry;
      const message = encodeMessage(msg.name, JSON.stringify(msg.args), {
        id,
        attempt: msg.attempt,
        expiresAt: msg.expiresAt,
      });
      const list2 = byQueue.get(f.queue) ?? [];
      list2.push({ entry: f.entry, id, message });
      byQueue.set(f.queue, list2);
      this.drop(f, new TasukiError('E_LOST', 'handed back at shutdown'));
    }
    let n = 0;
    for (const [queue, tasks] of byQueue) {
      const k = this.app.keys;
      n += await scripts.run(
        this.main as Redis,
        scripts.handback(
          { stream: k.stream.key({ queue }), parked: k.parked.key({ queue }) },
          { group: GROUP, consumer: this.name, tasks },
        ),
      );
    }
    return n;
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
    if (!this.running) return;
    this.running = false;
    const started = Date.now();
    this.wakeFetch();
    // Unblock the fetch connection until no read is left (a second read waits behind the first).
    while (this.reads.size > 0 && this.blockingId !== undefined) {
      await this.main?.client('UNBLOCK', this.blockingId).catch(() => undefined);
      await Promise.race([Promise.all(this.reads), new Promise((r) => setTimeout(r, 20))]);
    }
    await this.fetchLoop;
    await Promise.all(this.loops.map((l) => l.stop()));
    const unstarted = this.ready.splice(0);
    const handedBack = await this.handBack(unstarted).catch((err: unknown) => {
      this.log.error({ err }, 'could not hand back unstarted tasks; they recover after claimIdle');
      return 0;
    });
    let abandoned = 0;
    if (this.active > 0) {
      const timedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), Math.max(0, this.graceMs - (Date.now() - started)));
        this.idle = () => {
          clearTimeout(timer);
          resolve(false);
        };
      });
      if (timedOut) {
        const running = [...this.holding.values()].flatMap((m) => [...m.values()]);
        abandoned = await this.handBack(running).catch(() => 0);
      }
    }
    await this.completer?.drain();
    await this.heartbeat?.stop();
    this.blocking?.disconnect();
    await this.main?.quit().catch(() => undefined);
    this.log.info({ ...this.counts, handedBack, abandoned, ms: Date.now() - started }, 'worker stopped');
  }
}
