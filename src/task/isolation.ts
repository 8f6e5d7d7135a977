/**
 * A task's `isolation` option resolved for the worker: which kind of isolate, and which module an
 * isolate imports to find the task's handler by name. Importing that module in an isolate defines
 * the task again there; {@link registerForIsolate} is how the isolate learns of it.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TasukiError } from '../errors.js';

/** How a task's handler runs, when not in the worker's event loop. */
export type Isolation = 'thread' | 'process' | IsolationOptions;

/** The `isolation` option in full. */
export interface IsolationOptions {
  /** `thread`: a `node:worker_threads` thread; `process`: a child process (`child_process.fork`). */
  kind: 'thread' | 'process';
  /**
   * The module that defines the task (its path or file URL; pass `import.meta.url`). Each isolate
   * imports it and finds the task by name. Default: the file that called `app.task()`.
   */
  module?: string | URL;
  /** Isolates in the task's pool (default: the worker's concurrency). */
  size?: number;
  /** Heap limit of each isolate, MiB: an isolate that runs out of it dies and the attempt fails. */
  maxMemoryMb?: number;
}

/** The option as the worker uses it. */
export interface ResolvedIsolation {
  kind: 'thread' | 'process';
  /** File URL of the module that defines the task. */
  module: string;
  size: number | undefined;
  maxMemoryMb: number | undefined;
}

/** Where the tasks defined inside an isolate are collected, by name (see isolation/isolate-main.ts). */
export const ISOLATE_TASKS: unique symbol = Symbol.for('tasuki.isolate.tasks') as never;

/** Inside an isolate, records a task defined while its module loads; elsewhere does nothing. */
export function registerForIsolate(name: string, definition: unknown): void {
  const tasks = (globalThis as Record<symbol, unknown>)[ISOLATE_TASKS];
  if (tasks instanceof Map) tasks.set(name, definition);
}

/** tasuki's own code (src/ or dist/ of this package), skipped when looking for the caller. */
const OWN = [new URL('../../src/', import.meta.url).href, new URL('../../dist/', import.meta.url).href];

/** The file URL of the first stack frame outside tasuki: the module that defines the task. */
function callerModule(): string | undefined {
  const stack = new Error().stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^()\s]+?):\d+:\d+\)?$/.exec(line.trim());
    if (!m) continue;
    const url = (m[1] as string).startsWith('file://')
      ? (m[1] as string)
      : pathToFileURL(m[1] as string).href;
    if (!OWN.some((own) => url.startsWith(own))) return url;
  }
  return undefined;
}

function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  return module.startsWith('file://') ? module : pathToFileURL(module).href;
}

/** The task's isolation, resolved; `undefined` for a task that runs in the worker's event loop. */
export function resolveIsolation(
  name: string,
  isolation: Isolation | undefined,
): ResolvedIsolation | undefined {
  if (isolation === undefined) return undefined;
  const o = typeof isolation === 'string' ? { kind: isolation } : isolation;
  const module = o.module === undefined ? callerModule() : moduleUrl(o.module);
  if (module === undefined) {
    throw new TasukiError(
      'E_CONFIG',
      `task "${name}" has isolation "${o.kind}" and the module that defines it could not be found from the stack; ` +
        "pass it: isolation: { kind: '" +
        o.kind +
        "', module: import.meta.url }",
    );
  }
  return { kind: o.kind, module, size: o.size, maxMemoryMb: o.maxMemoryMb };
}

/** The module's path, for messages. */
export function modulePath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}
