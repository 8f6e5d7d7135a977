/**
 * A task as a canvas member: `task.s(args)` runs with those arguments, `task.s()` with the previous
 * member's result as its arguments (see docs/canvas.md). A signature is plain data; the canvas part
 * (src/canvas/) composes signatures into chains, groups and chords and enqueues them.
 */
import type { NewPayload } from '../payloads/store.js';

/** Where a canvas member runs, when not its task's default queue. */
export interface SignatureOptions {
  /** Queue of this member (one the app declares; default: the task's queue). */
  queue?: string;
}

/** What a canvas member needs from its task ({@link Task} is one). */
export interface SignatureTask {
  readonly name: string;
  readonly queue: string;
  /** The app the task belongs to: every member of a canvas must share one. */
  readonly host: object;
  /** Checks arguments against the task's schema; throws `E_TASK_ARGS` naming `path`. */
  checkArgs(args: unknown, path: string): Promise<void>;
  /**
   * The message of a canvas member (its task id and canvas reference in the meta), claim-checked
   * when its arguments are big; not validated (the worker validates every message it runs).
   */
  memberMessage(
    args: unknown,
    member: { id: string; canvas: string; queue: string },
  ): { message: string; payload?: NewPayload | undefined };
}

/**
 * A canvas member that takes `In` (the previous member's result; `unknown` when its arguments are
 * bound, since it ignores its input) and resolves `Out`. Immutable: {@link set} makes a new one.
 */
export class Signature<In, Out> {
  /** Phantom: the input this member accepts (contravariant). Never set. */
  declare readonly __in: (input: In) => void;
  /** Phantom: what this member resolves. Never set. */
  declare readonly __out: () => Out;
  readonly kind = 'task' as const;

  constructor(
    readonly task: SignatureTask,
    /** True when the arguments are given; false: the previous member's result is the arguments. */
    readonly bound: boolean,
    readonly args: unknown,
    readonly options: SignatureOptions = {},
  ) {}

  /** The same member with other options (e.g. another queue): `add.s({ n: 1 }).set({ queue: 'fast' })`. */
  set(options: SignatureOptions): Signature<In, Out> {
    return new Signature<In, Out>(this.task, this.bound, this.args, { ...this.options, ...options });
  }

  /** The queue this member runs on. */
  get queue(): string {
    return this.options.queue ?? this.task.queue;
  }
}
