/** What a handler gets as `ctx`, and the soft and hard time limits around its call. */
import { TimeLimitError } from '../errors.js';
import type { IsolationPools } from '../isolation/pool.js';
import type { Logger } from '../log/logger.js';
import type { ProgressWriter } from '../progress/writer.js';
import { encodeProgress, type ProgressValue } from '../progress/value.js';
import type { Task, TaskContext } from '../task/task.js';
import { toMs } from '../util/duration.js';
import { attemptFence, formatTaskId } from '../wire/ids.js';
import { abortHeld, signalOf, type Held } from './holdings.js';

/** Who is running which attempt: what the context reads. */
export interface AttemptIdentity {
  readonly held: Held;
  /** Task id, local part. */
  readonly local: string;
  readonly name: string;
  readonly attempt: number;
}

/** What a handler's call needs from its worker besides the task (the runner's settings are one). */
export interface HandlerHost {
  log: Logger;
  /** Where `ctx.progress` writes (set once the worker is connected). */
  progress?: ProgressWriter | undefined;
  /** The worker's isolate pools, for tasks with `isolation`. */
  isolation?: IsolationPools | undefined;
}

/**
 * A class, so that making one per task is cheap; the id string, the AbortController and the child
 * logger are made only if the handler asks for them.
 */
class Context implements TaskContext {
  private taskLog: Logger | undefined;

  constructor(
    private readonly run: AttemptIdentity,
    private readonly host: HandlerHost,
  ) {}

  get id(): string {
    return formatTaskId(this.run.local, this.run.held.queue);
  }

  get queue(): string {
    return this.run.held.queue;
  }

  get attempt(): number {
    return this.run.attempt;
  }

  get signal(): AbortSignal {
    return signalOf(this.run.held);
  }

  get priority(): number {
    return this.run.held.level;
  }

  get fence(): bigint {
    return attemptFence(this.run.held.entry, this.run.held.deliveries);
  }

  get log(): Logger {
    return (this.taskLog ??= this.host.log.child({
      taskId: this.id,
      task: this.run.name,
      queue: this.run.held.queue,
      attempt: this.run.attempt,
    }));
  }

  /** The attempt's progress tracker is made on the first report: a task that never reports pays nothing. */
  progress(value: ProgressValue): void {
    const held = this.run.held;
    if (held.progress === undefined) {
      const writer = this.host.progress;
      if (writer === undefined) {
        encodeProgress(value); // not connected (yet): nowhere to write; still check the value
        return;
      }
      held.progress = writer.tracker(held.queue, this.run.local, this.run.attempt);
    }
    held.progress.report(value);
  }
}

/** Calls the handler under the task's soft and hard time limits. */
export function callHandler(task: Task, args: unknown, run: AttemptIdentity, host: HandlerHost): unknown {
  const definition = task.definition;
  const ctx = new Context(run, host);
  const hard = definition.timeLimit === undefined ? undefined : toMs(definition.timeLimit);
  const soft = definition.softTimeLimit === undefined ? undefined : toMs(definition.softTimeLimit);
  if (task.isolation !== undefined && host.isolation !== undefined) {
    return callIsolated(host.isolation, task, args, ctx, run.held, soft, hard);
  }
  if (hard === undefined && soft === undefined) return definition.handler(args, ctx);
  return limited(definition.handler(args, ctx), run.held, soft, hard);
}

/**
 * An isolated task runs in one of the worker's isolates (src/isolation/), under the same limits,
 * counted from when its handler is called there: starting an isolate and loading the task's module
 * is not the handler's time.
 */
function callIsolated(
  pools: IsolationPools,
  task: Task,
  args: unknown,
  ctx: Context,
  held: Held,
  soft: number | undefined,
  hard: number | undefined,
): Promise<unknown> {
  if (hard === undefined && soft === undefined) return pools.run(task, args, ctx);
  return new Promise((resolve, reject) => {
    let limitedRun: Promise<unknown> | undefined;
    const done: Promise<unknown> = pools.run(task, args, ctx, () => {
      limitedRun = limited(done, held, soft, hard);
      limitedRun.then(resolve, reject);
    });
    done.then(
      (value) => limitedRun === undefined && resolve(value),
      (err: unknown) => limitedRun === undefined && reject(err as Error),
    );
  });
}

async function limited(
  result: unknown,
  held: Held,
  soft: number | undefined,
  hard: number | undefined,
): Promise<unknown> {
  const timers: NodeJS.Timeout[] = [];
  try {
    if (soft !== undefined) {
      timers.push(setTimeout(() => abortHeld(held, new TimeLimitError('soft', soft)), soft));
    }
    const run = Promise.resolve(result);
    if (hard === undefined) return await run;
    // Past the hard limit the attempt is failed and the slot freed; the handler, if it ignores the
    // signal, finishes in the background and its outcome is dropped.
    run.catch(() => undefined);
    return await Promise.race([
      run,
      new Promise<never>((_, reject) => {
        timers.push(
          setTimeout(() => {
            const err = new TimeLimitError('hard', hard);
            abortHeld(held, err);
            reject(err);
          }, hard),
        );
      }),
    ]);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
