/**
 * A handle on an enqueued canvas: wait for its result (the last member's, or a group's results in
 * order), see which member failed it, reach its members' own handles.
 */
import { inspect } from 'node:util';
import { TaskFailedError, TasukiError, type RemoteError } from '../errors.js';
import type { TaskInfo } from '../results/lookup.js';
import type { TaskHandle } from '../task/task.js';
import type { Duration } from '../util/duration.js';
import type { CanvasFailure, CanvasHost, CanvasRuntime } from './runtime.js';

/**
 * A canvas failed: one of its members failed (or expired), so what came after it did not run. Names
 * the member (`member.id`, `member.task`) and carries its error as `remote`.
 */
export class CanvasFailedError extends TasukiError {
  /** The canvas's id (its handle's `id`). */
  readonly canvasId: string;
  /** The member that failed: task id, task name and its final state. */
  readonly member: { id: string; task: string; state: string };
  /** The member's error, as its record stores it. */
  readonly remote: RemoteError;

  constructor(canvasId: string, failure: CanvasFailure, options?: { cause?: unknown }) {
    super(
      'E_CANVAS_FAILED',
      `canvas ${canvasId} failed: member ${failure.task} (${failure.id}) ${failure.state}: ` +
        `${failure.error.name}: ${failure.error.message}; what came after it did not run ` +
        '(see docs/canvas.md, "when a member fails")',
      options,
    );
    this.name = 'CanvasFailedError';
    this.canvasId = canvasId;
    this.member = { id: failure.id, task: failure.task, state: failure.state };
    this.remote = failure.error;
  }
}

/** A handle on an enqueued chain, group or chord. `R` is what {@link result} resolves. */
export class CanvasHandle<R = unknown> {
  constructor(
    private readonly host: CanvasHost,
    private readonly runtime: CanvasRuntime,
    /** The canvas's own id, a task id in its home queue: `app.getTask(id)` shows its state. */
    readonly id: string,
    /** Every task member, in the order they appear in the canvas (not the order they run in). */
    readonly members: readonly TaskHandle[],
  ) {}

  [inspect.custom](): string {
    return `CanvasHandle ${inspect(this.toJSON(), { breakLength: Infinity })}`;
  }

  toJSON(): { id: string; members: string[] } {
    return { id: this.id, members: this.members.map((m) => m.id) };
  }

  /**
   * Waits for the whole canvas: resolves the last member's result for a chain or chord, every
   * member's result in order for a group. Rejects with {@link CanvasFailedError} naming the member
   * that failed (as soon as it failed, without waiting for the others), `TimeoutError`, or `E_CLOSED`.
   */
  async result(opts: { timeout?: Duration } = {}): Promise<R> {
    try {
      return (await this.host.waitForResult(this.id, opts)) as R;
    } catch (err) {
      if (!(err instanceof TaskFailedError)) throw err;
      const at = this.id.lastIndexOf('@');
      const failure = await this.runtime.failure(this.id.slice(0, at), this.id.slice(at + 1));
      if (failure === undefined) throw err;
      throw new CanvasFailedError(this.id, failure, { cause: err });
    }
  }

  /** The canvas's state now: `queued` while it runs, then `succeeded` or `failed` (see {@link result}). */
  info(): Promise<TaskInfo | null> {
    return this.host.getTask(this.id);
  }
}
