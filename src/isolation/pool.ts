/**
 * Pools of isolates, one per isolated task of a worker: each isolate runs one handler at a time,
 * is reused while healthy, and is ended (a thread terminated, a process killed) when its attempt
 * passes the hard time limit or is dropped; a crash fails the attempt and the pool starts a new
 * isolate for the next one. The worker's event loop only passes messages.
 */
import { pino } from 'pino';
import { TasukiError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ProgressValue } from '../progress/value.js';
import type { TaskContext } from '../task/definition.js';
import type { ResolvedIsolation } from '../task/isolation.js';
import { Isolate } from './isolate.js';
import { fromWireError, IsolateCrashError, toWireError, type FromIsolate } from './protocol.js';

/** What an isolated task looks like to its pool (a `Task` is one). */
export interface IsolatedTask {
  readonly name: string;
  readonly isolation: ResolvedIsolation | undefined;
}

/** Abort reasons that end the isolate rather than only abort the handler's signal. */
function ends(reason: unknown): boolean {
  const r = reason as { code?: unknown; kind?: unknown } | null;
  // The hard time limit (the attempt is failed now), a task dropped (lost, handed back at stop,
  // revoked), or cancelled: its outcome is decided, and a CPU-bound handler would not see a signal.
  return (
    (r?.code === 'E_TIME_LIMIT' && r.kind === 'hard') ||
    r?.code === 'E_LOST' ||
    r?.code === 'E_REVOKED' ||
    r?.code === 'E_CANCELLED'
  );
}

/** A log line from the isolate, written through the task's logger. */
function relog(log: Logger, line: string): void {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const { level, msg, ...fields } = entry;
  const name = pino.levels.labels[level as number] as 'info' | undefined;
  if (name && typeof log[name] === 'function') log[name](fields, typeof msg === 'string' ? msg : '');
}

class IsolatePool {
  private readonly idle: Isolate[] = [];
  /** Attempts waiting for an isolate (a pool smaller than the worker's concurrency). */
  private readonly waiting: { resolve: (isolate: Isolate) => void; reject: (err: Error) => void }[] = [];
  private count = 0;
  private closed = false;

  constructor(
    private readonly task: string,
    private readonly isolation: ResolvedIsolation,
    private readonly size: number,
  ) {}

  private start(): Isolate {
    this.count++;
    const isolate = new Isolate(this.isolation);
    this.parkIdle(isolate);
    return isolate;
  }

  /** While idle, an isolate that dies just leaves the pool. */
  private parkIdle(isolate: Isolate): void {
    isolate.listen({
      message: () => undefined,
      exit: () => {
        this.count--;
        const i = this.idle.indexOf(isolate);
        if (i >= 0) this.idle.splice(i, 1);
      },
    });
  }

  private acquire(): Isolate | Promise<Isolate> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.count < this.size) return this.start();
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private release(isolate: Isolate, healthy: boolean): void {
    if (!healthy || this.closed) {
      isolate.listen(undefined);
      isolate.kill();
      this.count--;
      const waiter = this.waiting.shift();
      if (waiter && !this.closed) waiter.resolve(this.start());
      return;
    }
    this.parkIdle(isolate);
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve(isolate);
    else this.idle.push(isolate);
  }

  async run(args: unknown, ctx: TaskContext, onStart: (() => void) | undefined): Promise<unknown> {
    const isolate = await this.acquire();
    return new Promise((resolve, reject) => {
      const signal = ctx.signal;
      let settled = false;
      const finish = (healthy: boolean, err: Error | undefined, value?: unknown): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        this.release(isolate, healthy);
        if (err) reject(err);
        else resolve(value);
      };
      const onAbort = (): void => {
        const reason: unknown = signal.reason;
        if (ends(reason)) finish(false, reason instanceof Error ? reason : new Error(String(reason)));
        else isolate.send({ type: 'abort', reason: toWireError(reason) });
      };
      isolate.listen({
        message: (m: FromIsolate) => {
          if (m.type === 'done')
            finish(true, m.ok ? undefined : fromWireError(m.error), m.ok ? m.value : undefined);
          else if (m.type === 'started') onStart?.();
          else if (m.type === 'progress') {
            try {
              ctx.progress(m.value as ProgressValue);
            } catch (err) {
              ctx.log.warn({ err }, 'a progress report from the isolate was refused');
            }
          } else if (m.type === 'log') relog(ctx.log, m.line);
        },
        exit: (why) =>
          finish(
            false,
            new IsolateCrashError(
              `the isolated handler of task "${this.task}" crashed: ${why}. The attempt failed (retried by the ` +
                `task's policy) and the next attempt gets a new ${this.isolation.kind}; look for the cause in the handler ` +
                `(process.exit, an uncaught exception or unhandled rejection, running out of memory)`,
            ),
          ),
      });
      if (isolate.exited) {
        finish(
          false,
          new IsolateCrashError(`the isolate for task "${this.task}" ended before the attempt started`),
        );
        return;
      }
      isolate.send({
        type: 'run',
        module: this.isolation.module,
        task: this.task,
        args,
        attempt: {
          id: ctx.id,
          queue: ctx.queue,
          attempt: ctx.attempt,
          fence: ctx.fence,
          priority: ctx.priority,
        },
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.closed = true;
    const stopped = new TasukiError(
      'E_LOST',
      'the worker stopped before an isolate was free for this attempt',
    );
    for (const waiter of this.waiting.splice(0)) waiter.reject(stopped);
    for (const isolate of this.idle.splice(0)) {
      isolate.listen(undefined);
      isolate.kill();
    }
  }
}

/**
 * A worker's isolate pools, made on a task's first isolated attempt. Pool size: the task's
 * `isolation.size`, else the worker's concurrency (so an isolate is free whenever a slot is).
 */
export class IsolationPools {
  private readonly pools = new Map<string, IsolatePool>();

  constructor(private readonly concurrency: number) {}

  /**
   * Runs the task's handler in one of its pool's isolates; resolves or rejects as the handler does.
   * `onStart` is called when the handler is called in its isolate (after the isolate has started and
   * loaded the task's module, which may take a while the first time).
   */
  run(task: IsolatedTask, args: unknown, ctx: TaskContext, onStart?: () => void): Promise<unknown> {
    const isolation = task.isolation as ResolvedIsolation;
    let pool = this.pools.get(task.name);
    if (!pool) {
      pool = new IsolatePool(task.name, isolation, isolation.size ?? this.concurrency);
      this.pools.set(task.name, pool);
    }
    return pool.run(args, ctx, onStart);
  }

  /** Ends every idle isolate, and each busy one as its attempt ends. */
  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }
}
