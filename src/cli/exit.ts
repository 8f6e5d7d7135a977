/**
 * Ending the process without losing output. Writes to a pipe are asynchronous on POSIX: calling
 * `process.exit()` right after a large `console.log` drops whatever the reader has not taken yet
 * (a 710 KB `dlq list --json` arrived as 200 KB). So the CLI waits until stdout and stderr have
 * handed everything to the operating system, then exits (a command may leave a timer or
 * connection open, so it does not just wait for the event loop to empty).
 */

/** Resolves once everything written to `stream` so far is flushed (or the stream is gone). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) {
      resolve();
      return;
    }
    // Writes complete in order, so this empty write's callback runs after every earlier one.
    stream.write('', () => resolve());
  });
}

/** Waits for stdout and stderr to flush. */
export async function flushOutput(): Promise<void> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
}

/** Exits with `code` once stdout and stderr are flushed. */
export async function exitWhenFlushed(code: number): Promise<never> {
  process.exitCode = code;
  await flushOutput();
  process.exit(code);
}

/**
 * A reader that goes away (`tasuki dlq list | head -1`) makes further writes fail with EPIPE;
 * that is the reader's choice, not a crash: stop writing and end quietly.
 */
export function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      stream.destroy();
    });
  }
}
