import type { Logger } from '../index.js';
import { exitWhenFlushed } from './exit.js';
import { formatMs } from './options.js';

/** Exit code after a second SIGTERM/SIGINT (128 + SIGINT, as shells report Ctrl-C). */
export const EXIT_SIGNALLED = 130;

export interface SignalStop {
  /** Where the "shutting down" line goes: the app's logger, with the task logs. */
  log: Logger;
  /** How long running tasks get to finish. */
  graceMs: number;
  /** After how long other workers take over the tasks of a worker that went away. */
  claimIdleMs: number;
  stop(): Promise<void>;
  /** What the first signal's log line says (default: the worker's grace). */
  stopping?: string;
  /** What a second signal's line says becomes of the work (default: the worker's running tasks). */
  abandoning?: string;
}

/**
 * Stops gracefully on the first SIGTERM/SIGINT (logging that it does, and how long the grace is)
 * and resolves when stopped; a second signal exits at once with code 130, saying what becomes of
 * the tasks still running: other workers take them over after claimIdle, as after a crash.
 */
export function stopOnSignals(s: SignalStop): Promise<void> {
  return new Promise((resolve, reject) => {
    let signalled = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (signalled) {
        const what =
          s.abandoning ??
          `without waiting for running tasks; other workers take them over after claimIdle (${formatMs(s.claimIdleMs)})`;
        process.stderr.write(`tasuki: second ${signal}: exiting now (code ${EXIT_SIGNALLED}) ${what}\n`);
        void exitWhenFlushed(EXIT_SIGNALLED);
        return;
      }
      signalled = true;
      const what =
        s.stopping ??
        `no new tasks; running tasks get up to ${formatMs(s.graceMs)} (grace) to finish, then are handed back`;
      s.log.info(
        { signal, graceMs: s.graceMs },
        `${signal}: shutting down: ${what}; send ${signal} again to exit at once`,
      );
      s.stop().then(resolve, reject);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}
