/** What a handler gets as `ctx`, and the soft and hard time limits around its call. */
import { TimeLimitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
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

/**
 * A class, so that making one per task is cheap; the id string, the AbortController and the child
 * logger are made only if the handler asks for them.
 */
class Context implements TaskContext {
  private taskLog: Logger | undefined;

  constructor(
    private readonly run: AttemptIdentity,
    private readonly baseLog: Logger,
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

  get fence(): bigint {
    return attemptFence(this.run.held.entry, this.run.held.deliveries);
  }

  get log(): Logger {
    return (this.taskLog ??= this.baseLog.child({
      taskId: this.id,
      task: this.run.name,
      queue: this.run.held.queue,
      attempt: this.run.attempt,
    }));
  }
}

/** Calls the handler under the task's soft and hard time limits. */
export function callHandler(task: Task, args: unknown, run: AttemptIdentity, log: Logger): unknown {
  const definition = task.definition;
  const ctx = new Context(run, log);
  const hard = definition.timeLimit === undefined ? undefined : toMs(definition.timeLimit);
  const soft = definition.softTimeLimit === undefined ? undefined : toMs(definition.softTimeLimit);
  if (hard === undefined && soft === undefined) return definition.handler(args, ctx);
  return limited(definition.handler(args, ctx), run.held, soft, hard);
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
