import type { Payload, SystemName } from '../config.js';

/** Where the throw-away server is and which queue a measurement uses. */
export interface Target {
  host: string;
  port: number;
  /** Queue name, fresh for each measurement. */
  queue: string;
  /** Largest payload the producer must accept (tasuki's `maxPayloadBytes`). */
  maxPayloadBytes: number;
  /** A directory for tasuki's filesystem payload store (the claim check); the peers have none. */
  payloadDir: string;
}

/** The enqueueing side of a system, used in the bench's own process. */
export interface Producer {
  /** Enqueues one task. */
  enqueue(p: Payload): Promise<void>;
  /** Enqueues many tasks with the system's bulk call. */
  enqueueBulk(ps: readonly Payload[]): Promise<void>;
  /** Enqueues one task and resolves when this producer observes it finished (its result wait). */
  run(p: Payload, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface WorkerSpec extends Target {
  concurrency: number;
  /** Resolve {@link BenchWorker.done} when this many tasks have finished (0: never). */
  expect: number;
  /** Called by the handler of every task; the worker child notes the first call. */
  onTask: () => void;
}

/** The consuming side of a system, run in a worker child process. */
export interface BenchWorker {
  /** Resolves with `performance.now()` when the `expect`-th finish is confirmed by Redis. */
  readonly done: Promise<number>;
  failures(): number;
  stop(): Promise<void>;
}

export interface System {
  readonly name: SystemName;
  /** `waitResults`: also set up whatever {@link Producer.run} needs to observe completions. */
  producer(t: Target, opts: { waitResults: boolean }): Promise<Producer>;
  /** Starts a worker with a no-op handler; resolves once it is running. */
  worker(spec: WorkerSpec): Promise<BenchWorker>;
}

/** Loads one system's adapter (only that system's library is imported). */
export async function loadSystem(name: SystemName): Promise<System> {
  switch (name) {
    case 'tasuki':
      return (await import('./tasuki.js')).tasukiSystem;
    case 'tasuki-full':
      return (await import('./tasuki.js')).tasukiFullSystem;
    case 'tasuki-rabbitmq':
      return (await import('./tasuki.js')).tasukiRabbitMqSystem;
    case 'bullmq':
      return (await import('./bullmq.js')).bullmqSystem;
    case 'bee-queue':
      return (await import('./bee-queue.js')).beeQueueSystem;
  }
}

/** A promise and its resolver. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
