/**
 * Canvas: chain, group and chord of tasks (see docs/canvas.md). A layer 3 part: above task/,
 * results/ and scripts/; the app wires its continuation task, the worker knows nothing of it.
 */
export { chain, chord, group, Chain, Group } from './canvas.js';
export type { AnyCanvas, Canvas, InputOfAll, OutputOf, OutputsOf } from './canvas.js';
export { CanvasFailedError, CanvasHandle } from './handle.js';
export type { CanvasFailure, CanvasHost } from './runtime.js';
export { continuationTask } from './continuation.js';
