/**
 * Starting the heartbeat thread (./heartbeat-thread.ts): its entry from compiled JavaScript or from
 * the TypeScript sources, and whether the app's connection settings can reach it at all.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { ConnectionOptions } from '../connection/connect.js';
import type { ThreadData } from './heartbeat-thread-shared.js';

/**
 * Starts the thread. From compiled JavaScript (dist/) its entry is the `.js` beside this file; from
 * the TypeScript sources (tests, tsx) its entry is the `.ts` file, which the thread loads through
 * tsx registered in the thread (hooks registered by `--import tsx` do not reach worker threads on
 * Node 20).
 */
export function startThread(data: ThreadData): Thread {
  const here = import.meta.url;
  if (!here.endsWith('.ts'))
    return new Thread(new URL('./heartbeat-thread-main.js', here), { workerData: data });
  // No inherited flags: the thread registers tsx itself (an inherited `--import tsx` would load it twice).
  const options = { workerData: data, execArgv: [] as string[] };
  const entry = new URL('./heartbeat-thread-main.ts', here);
  let tsx: string | undefined;
  try {
    tsx = import.meta.resolve('tsx/esm/api');
  } catch {
    tsx = undefined; // another loader, or a Node that runs .ts itself
  }
  if (!tsx) return new Thread(entry, options);
  const boot =
    `import(${JSON.stringify(tsx)}).then((tsx) => tsx.register())` +
    `.then(() => import(${JSON.stringify(entry.href)}))`;
  return new Thread(boot, { ...options, eval: true });
}

/** Why connection settings cannot reach a thread, if they cannot. */
export function uncloneable(connection: ConnectionOptions): string | undefined {
  try {
    structuredClone(connection);
    return undefined;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return `the app's ioredis options cannot be passed to a thread (options holding functions cannot be cloned: ${detail})`;
  }
}
