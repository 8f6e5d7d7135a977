/**
 * The internal task `tasuki.canvas`: the settle step appends one to a canvas member's queue when the
 * member's outcome is final, and a worker of that queue runs it like any task — reclaimed if its
 * worker dies, retried if Redis fails under it. Each run is idempotent (see runtime.ts), so running
 * one twice changes nothing.
 */
import { z } from 'zod';
import type { TaskDefinition } from '../task/definition.js';
import { CANVAS_TASK } from '../wire/fields.js';
import { runtimeOf, type CanvasHost, type Continuation } from './runtime.js';

const continuationSchema = z.object({
  c: z.string(),
  r: z.looseObject({ state: z.string() }),
});

/** The definition of the continuation task of an app's canvases. */
export function continuationTask(host: CanvasHost): TaskDefinition<typeof continuationSchema, void> {
  return {
    name: CANVAS_TASK,
    schema: continuationSchema,
    handler: (args) => runtimeOf(host).step(args as unknown as Continuation),
    // Its failures are Redis's (an outage, a failover) or a worker that lacks a member's task: try
    // again for about ten minutes before it becomes a dead letter (which `tasuki dlq retry` resumes).
    maxAttempts: 20,
    backoff: { type: 'exponential', delay: '200ms', maxDelay: '60s' },
    storeResult: false,
  };
}
