/**
 * One isolate: a worker thread or a child process running ./isolate-main.ts, from compiled
 * JavaScript or from the TypeScript sources (under tsx, as the heartbeat thread starts), with one
 * interface for messages, exit and termination whichever it is.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker as Thread } from 'node:worker_threads';
import type { FromIsolate, ToIsolate, WireError } from './protocol.js';

/** Kind and limits of an isolate. */
export interface IsolateSpec {
  kind: 'thread' | 'process';
  maxMemoryMb?: number | undefined;
}

/** What the isolate's owner hears from it. */
export interface IsolateListener {
  message(m: FromIsolate): void;
  /** It ended: `why` says how (exit code, signal, the error that killed it). */
  exit(why: string): void;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** tsx's loader, when these are the TypeScript sources and tsx is installed. */
function tsxUrl(): string | undefined {
  if (!FROM_SOURCES) return undefined;
  try {
    return import.meta.resolve('tsx');
  } catch {
    return undefined;
  }
}

function startThread(spec: IsolateSpec): Thread {
  const resourceLimits = spec.maxMemoryMb ? { maxOldGenerationSizeMb: spec.maxMemoryMb } : undefined;
  const options = { ...(resourceLimits ? { resourceLimits } : {}) };
  if (!FROM_SOURCES) return new Thread(new URL('./isolate-main.js', import.meta.url), options);
  const entry = new URL('./isolate-main.ts', import.meta.url);
  const tsx = tsxUrl() === undefined ? undefined : import.meta.resolve('tsx/esm/api');
  // Hooks registered by `--import tsx` do not reach threads on Node 20: the thread registers tsx.
  if (!tsx) return new Thread(entry, { ...options, execArgv: [] });
  const boot =
    `import(${JSON.stringify(tsx)}).then((tsx) => tsx.register())` +
    `.then(() => import(${JSON.stringify(entry.href)}))`;
  return new Thread(boot, { ...options, eval: true, execArgv: [] });
}

function startProcess(spec: IsolateSpec): ChildProcess {
  const entry = new URL(FROM_SOURCES ? './isolate-main.ts' : './isolate-main.js', import.meta.url);
  const tsx = tsxUrl();
  const execArgv = [
    ...(tsx ? ['--import', tsx] : []),
    ...(spec.maxMemoryMb ? [`--max-old-space-size=${spec.maxMemoryMb}`] : []),
  ];
  return fork(fileURLToPath(entry), [], {
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** A running isolate. */
export class Isolate {
  private readonly thread: Thread | undefined;
  private readonly child: ChildProcess | undefined;
  private listener: IsolateListener | undefined;
  private crash: string | undefined;
  /** Ended (exited or terminated). */
  exited = false;

  constructor(readonly spec: IsolateSpec) {
    const onMessage = (m: FromIsolate): void => {
      if (m.type === 'crash') this.crash = describe(m.error);
      this.listener?.message(m);
    };
    if (spec.kind === 'thread') {
      const thread = startThread(spec);
      this.thread = thread;
      thread.on('message', onMessage);
      thread.on('error', (err) => (this.crash = describe(err)));
      thread.on('exit', (code) => this.ended(`its thread exited with code ${code}`));
    } else {
      const child = startProcess(spec);
      this.child = child;
      child.on('message', (m) => onMessage(m as FromIsolate));
      child.on('error', (err) => (this.crash ??= describe(err)));
      child.on('exit', (code, signal) =>
        this.ended(`its process (pid ${child.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}`),
      );
    }
  }

  /** Who hears its messages and its end (one owner at a time). */
  listen(listener: IsolateListener | undefined): void {
    this.listener = listener;
  }

  send(m: ToIsolate): void {
    if (this.exited) return;
    if (this.thread) this.thread.postMessage(m);
    else this.child?.send(m);
  }

  /** Ends it at once (a thread is terminated, a process gets SIGKILL). */
  kill(): void {
    if (this.exited) return;
    if (this.thread) void this.thread.terminate();
    else this.child?.kill('SIGKILL');
  }

  private ended(how: string): void {
    if (this.exited) return;
    this.exited = true;
    this.listener?.exit(this.crash ? `${how} (${this.crash})` : how);
  }
}

function describe(err: Error | WireError): string {
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
}
