import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { connect } from '../connection/connect.js';
import {
  OptionsError,
  TaskArgsError,
  TasukiError,
  UnknownQueueError,
  UnknownTaskError,
  type FieldIssue,
} from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Tasuki } from '../queue/app.js';
import { formatTaskId } from '../queue/ids.js';
import { decodeMessage, MESSAGE_FIELD } from '../queue/message.js';
import { validate } from '../queue/schema.js';
import type { TaskContext } from '../queue/task.js';
import { GROUP } from '../results/lookup.js';
import { encodeRecord, toStoredError, type TaskRecord } from '../results/record.js';
import { registerScripts } from '../scripts/catalogue.js';
import { Incident } from '../util/incident.js';
import { Completer } from './completer.js';
import { Promoter } from './promoter.js';

/** Options of a worker. */
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
  /** Consumer name (default `<host>:<pid>:<random>`). */
  name?: string;
  /** Logger (default: the app's). */
  logger?: Logger;
}

interface Fetched {
  queue: string;
  entry: string;
  fields: string[];
}

/**
 * Runs an app's tasks from its queues: reads each queue's stream through the consumer group
 * `tasuki` in batches, runs up to `concurrency` handlers at once, and records each finished task
 * with one script call per batch.
 */
export class Worker {
  readonly name: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  private readonly prefetch: number;
  private readonly blockMs: number;
  private readonly log: Logger;
  private main: Redis | undefined;
  private blocking: Redis | undefined;
  private blockingId: number | undefined;
  private completer: Completer | undefined;
  private promoter: Promoter | undefined;
  private readonly ready: Fetched[] = [];
  private active = 0;
  private running = false;
  private fetchLoop: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private idle: (() => void) | undefined;
  private readonly streamKeys: string[];
  private readonly queueByKey = new Map<string, string>();
  /** Tasks finished by this worker, by final state. */
  readonly counts = { succeeded: 0, failed: 0 };

  constructor(
    private readonly app: Tasuki,
    private readonly options: WorkerOptions = {},
  ) {
    const issues: FieldIssue[] = [];
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      issues.push({ path: 'concurrency', message: 'must be an integer >= 1' });
    const prefetch = options.prefetch ?? Math.max(concurrency, 16);
    if (!Number.isInteger(prefetch) || prefetch < 0)
      issues.push({ path: 'prefetch', message: 'must be an integer >= 0' });
    const blockMs = options.blockMs ?? 2000;
    if (!Number.isInteger(blockMs) || blockMs < 1)
      issues.push({ path: 'blockMs', message: 'must be an integer >= 1' });
    if (issues.length) throw new OptionsError('worker options', issues, 'E_CONFIG');
    const queues = options.queues ?? app.queues;
    for (const q of queues) if (!app.queues.includes(q)) throw new UnknownQueueError(q, app.queues);
    this.queues = [...new Set(queues)];
    this.concurrency = concurrency;
    this.prefetch = prefetch;
    this.blockMs = blockMs;
    this.name = options.name ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.log = (options.logger ?? app.log).child({ worker: this.name });
    this.streamKeys = this.queues.map((queue) => app.keys.stream.key({ queue }));
    this.streamKeys.forEach((k, i) => this.queueByKey.set(k, this.queues[i] as string));
  }

  /** Connects, makes sure each queue's consumer group exists, and starts fetching. */
  async start(): Promise<void> {
    if (this.running) return;
    const url = this.app.redisUrl();
    if (!url) await this.app.redis(); // throws the app's "no Redis URL" error
    const base = { url: url as string, ...this.app.connectionOptions() };
    this.main = await connect({ ...base, clientName: 'tasuki:worker' });
    this.blocking = await connect({ ...base, clientName: 'tasuki:worker-fetch' });
    registerScripts(this.main);
    this.blockingId = Number(await this.blocking.client('ID'));
    await this.ensureGroups();
    await this.main.sadd(this.app.keys.queues.key({}), ...this.queues);
    this.completer = new Completer(this.main, this.app.keys, this.app.resultTtlMs, this.log);
    this.promoter = new Promoter(
      this.main,
      this.app.keys,
      this.queues,
      this.log,
      this.options.promoteIntervalMs,
    );
    this.running = true;
    this.promoter.start();
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

  private async fetch(): Promise<void> {
    const conn = this.blocking as Redis;
    const capacity = this.concurrency + this.prefetch;
    const incident = new Incident(this.log, 'fetching tasks');
    while (this.running) {
      const room = capacity - this.active - this.ready.length;
      // Fetch in batches: wait until at least half the capacity is free (or nothing is in hand).
      if (room <= 0 || (room < Math.ceil(capacity / 2) && this.active + this.ready.length > 0)) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = (await conn.xreadgroup(
          'GROUP',
          GROUP,
          this.name,
          'COUNT',
          room,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          ...this.streamKeys,
          ...this.streamKeys.map(() => '>'),
        )) as [string, [string, string[]][]][] | null;
        incident.ok();
      } catch (err) {
        if (!this.running) break;
        incident.fail(err);
        if (err instanceof Error && err.message.includes('NOGROUP'))
          await this.ensureGroups().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!reply) continue;
      for (const [key, entries] of reply) {
        const queue = this.queueByKey.get(key) as string;
        for (const [entry, fields] of entries) this.ready.push({ queue, entry, fields });
      }
      this.pump();
    }
  }

  private pump(): void {
    while (this.active < this.concurrency && this.ready.length > 0) {
      const next = this.ready.shift() as Fetched;
      this.active++;
      void this.execute(next).finally(() => {
        this.active--;
        this.pump();
        const wake = this.slotFreed;
        this.slotFreed = undefined;
        wake?.();
        if (this.active === 0 && this.ready.length === 0) this.idle?.();
      });
    }
  }

  private async execute(f: Fetched): Promise<void> {
    const startedAt = Date.now();
    let local = f.entry;
    let fromParked = false;
    let name = '?';
    let attempt = 1;
    let record: TaskRecord;
    try {
      const raw = fieldValue(f.fields, MESSAGE_FIELD);
      const msg = decodeMessage(raw);
      name = msg.name;
      attempt = msg.attempt ?? 1;
      if (msg.id !== undefined) {
        local = msg.id;
        fromParked = msg.id !== f.entry;
      }
      const task = this.app.getTaskDefinition(msg.name);
      if (!task) throw new UnknownTaskError(msg.name, this.app.taskNames());
      const checked = await validate(task.definition.schema, msg.args);
      if (!checked.ok) throw new TaskArgsError(msg.name, checked.issues);
      const id = formatTaskId(local, f.queue);
      const controller = new AbortController();
      const log = this.log;
      let taskLog: Logger | undefined;
      const ctx: TaskContext = {
        id,
        queue: f.queue,
        attempt,
        signal: controller.signal,
        get log() {
          return (taskLog ??= log.child({ taskId: id, task: name, queue: f.queue, attempt }));
        },
      };
      const result: unknown = await task.definition.handler(checked.value, ctx);
      record = {
        state: 'succeeded',
        task: name,
        attempt,
        worker: this.name,
        startedAt,
        finishedAt: Date.now(),
        result,
      };
    } catch (err) {
      record = {
        state: 'failed',
        task: name,
        attempt,
        worker: this.name,
        startedAt,
        finishedAt: Date.now(),
        error: toStoredError(err),
      };
    }
    this.record(f, local, fromParked, record);
  }

  private record(f: Fetched, local: string, fromParked: boolean, record: TaskRecord): void {
    let encoded: string;
    try {
      encoded = encodeRecord(record);
    } catch (err) {
      record = {
        ...record,
        state: 'failed',
        result: undefined,
        error: toStoredError(
          new TasukiError('E_TASK_FAILED', `result is not JSON-serialisable: ${(err as Error).message}`),
        ),
      };
      encoded = encodeRecord(record);
    }
    this.counts[record.state === 'succeeded' ? 'succeeded' : 'failed']++;
    const fields = {
      taskId: formatTaskId(local, f.queue),
      task: record.task,
      queue: f.queue,
      attempt: record.attempt,
      durationMs: record.finishedAt - record.startedAt,
    };
    if (record.state === 'succeeded') this.log.info(fields, 'task succeeded');
    else this.log.warn({ ...fields, error: record.error }, 'task failed');
    (this.completer as Completer).add(f.queue, {
      entry: f.entry,
      id: local,
      resultKey: this.app.keys.result.key({ queue: f.queue, task: local }),
      record: encoded,
      parked: fromParked,
    });
  }

  /** Tasks running now. */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Stops fetching, lets the tasks in hand finish, records them, and closes the connections.
   * Safe to call more than once.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    const wake = this.slotFreed;
    this.slotFreed = undefined;
    wake?.();
    if (this.blockingId !== undefined)
      await this.main?.client('UNBLOCK', this.blockingId).catch(() => undefined);
    await this.fetchLoop;
    await this.promoter?.stop();
    if (this.active > 0 || this.ready.length > 0) {
      await new Promise<void>((r) => {
        this.idle = r;
        this.pump();
      });
    }
    await this.completer?.drain();
    this.blocking?.disconnect();
    await this.main?.quit().catch(() => undefined);
    this.log.info({ ...this.counts }, 'worker stopped');
  }
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
