/**
 * Tasks of the isolation benchmark (bench/isolation.ts): the same trivial and CPU-bound handlers in
 * the worker's event loop, in threads and in child processes. Defined by `define(app)` on the
 * benchmark's app, and at the top level on an app of its own, which is what an isolate imports.
 */
import { z } from 'zod';
import { tasuki, type Tasuki } from '../../src/index.js';

export const MODES = ['in-loop', 'thread', 'process'] as const;
export type Mode = (typeof MODES)[number];

function spin(ms: number): number {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) n++;
  return n;
}

/** One task per mode: `work.<mode>` spins `ms` (0: returns at once). */
export function define(app: Tasuki): Record<Mode, ReturnType<typeof task>> {
  return {
    'in-loop': task(app, 'in-loop'),
    thread: task(app, 'thread'),
    process: task(app, 'process'),
  };
}

function task(app: Tasuki, mode: Mode) {
  return app.task({
    name: `work.${mode}`,
    schema: z.object({ ms: z.number() }),
    ...(mode === 'in-loop' ? {} : { isolation: mode }),
    handler: ({ ms }) => (ms > 0 ? spin(ms) : 0),
  });
}

define(tasuki());
