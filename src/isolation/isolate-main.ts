/**
 * Inside an isolate (a worker thread or a child process started by ./isolate.ts): imports the
 * module that defines a task, finds the task by name among those defined while it loaded, and runs
 * one handler at a time with a context that forwards progress and log lines to the worker and
 * aborts its signal when the worker says so.
 */
import { parentPort } from 'node:worker_threads';
import { pino } from 'pino';
import { TasukiError } from '../errors.js';
import { encodeProgress } from '../progress/value.js';
import { ISOLATE_TASKS, modulePath } from '../task/isolation.js';
import { fromWireError, toWireError, type FromIsolate, type ToIsolate } from './protocol.js';

type Handler = (args: unknown, ctx: unknown) => unknown;

/** Filled by every `app.task()` while a module loads here (see task/isolation.ts). */
const tasks = new Map<string, { handler: Handler }>();
(globalThis as Record<symbol, unknown>)[ISOLATE_TASKS] = tasks;

const port = parentPort;
const send: (m: FromIsolate) => void = port
  ? (m) => port.postMessage(m)
  : (m) => {
      process.send?.(m);
    };

if (!port) {
  // A child process: ends with its worker, and reports its own crash before it dies.
  process.on('disconnect', () => process.exit(0));
  process.on('uncaughtException', (err) => {
    process.send?.({ type: 'crash', error: toWireError(err) }, () => process.exit(70));
    setTimeout(() => process.exit(70), 1000).unref();
  });
}

/** Log lines go to the worker, which writes them through the task's logger (and its level). */
const log = pino(
  { level: 'trace', base: null, timestamp: false },
  { write: (line: string) => send({ type: 'log', line }) },
);

/** Progress is sent at most this often, ms; the worker throttles writes to Redis further. */
const PROGRESS_SEND_MS = 50;

const loads = new Map<string, Promise<unknown>>();

/**
 * Imports the module. A `.ts` module needs tsx, which this isolate registers itself when it runs
 * from compiled JavaScript (from the sources it was started under tsx already; see isolate.ts). It
 * must be registered before the first try: Node remembers a failed import of a URL.
 */
async function load(module: string): Promise<unknown> {
  if (/\.[cm]?tsx?$/.test(new URL(module).pathname) && !import.meta.url.endsWith('.ts')) {
    let tsx: { register: () => unknown };
    try {
      tsx = await import('tsx/esm/api');
    } catch (err) {
      throw new TasukiError(
        'E_CONFIG',
        `module ${modulePath(module)} is TypeScript, which loads through the tsx package, and tsx is not ` +
          'installed; install it (`npm install tsx`) or compile the app and point isolation.module at the .js file',
        { cause: err },
      );
    }
    tsx.register();
  }
  return import(module);
}

let controller: AbortController | undefined;

async function run(m: Extract<ToIsolate, { type: 'run' }>): Promise<void> {
  const current = new AbortController();
  controller = current;
  let pending: { value: unknown } | undefined;
  let sentAt = 0;
  try {
    let loading = loads.get(m.module);
    if (!loading) loads.set(m.module, (loading = load(m.module)));
    await loading;
    const definition = tasks.get(m.task);
    if (!definition) {
      throw new TasukiError(
        'E_CONFIG',
        `module ${modulePath(m.module)} defines no task "${m.task}" when imported (tasks it defines: ` +
          `${[...tasks.keys()].join(', ') || 'none'}); define the task at the top level of that module, or set isolation.module`,
      );
    }
    const ctx = {
      id: m.attempt.id,
      queue: m.attempt.queue,
      attempt: m.attempt.attempt,
      fence: m.attempt.fence,
      priority: m.attempt.priority,
      signal: current.signal,
      log,
      progress(value: unknown): void {
        const json = encodeProgress(value); // a bad value throws here, in the handler
        const now = Date.now();
        if (now - sentAt < PROGRESS_SEND_MS) {
          pending = { value: JSON.parse(json) };
          return;
        }
        sentAt = now;
        pending = undefined;
        send({ type: 'progress', value: JSON.parse(json) });
      },
    };
    send({ type: 'started' });
    const value = await definition.handler(m.args, ctx);
    if (pending) send({ type: 'progress', value: pending.value });
    try {
      send({ type: 'done', ok: true, value });
    } catch (err) {
      throw new TasukiError(
        'E_RESULT',
        `the handler's result cannot leave its isolate (${(err as Error).message}); return plain data`,
        { cause: err },
      );
    }
  } catch (err) {
    if (pending) send({ type: 'progress', value: pending.value });
    send({ type: 'done', ok: false, error: toWireError(err) });
  } finally {
    if (controller === current) controller = undefined;
  }
}

function receive(m: ToIsolate): void {
  if (m.type === 'run') void run(m);
  else controller?.abort(fromWireError(m.reason));
}

if (port) port.on('message', receive);
else process.on('message', receive);
