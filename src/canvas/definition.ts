/**
 * A canvas as stored in Redis: its tree flattened into numbered nodes, each naming its parent and its
 * position there, so a continuation finds what comes next from one node index. Also the ids: a
 * canvas's own task id, its members' task ids and their references, all derived from the canvas's
 * local id and a node index, so any process computes them without asking Redis.
 */
import { randomBytes } from 'node:crypto';
import { TasukiError } from '../errors.js';
import { CANVAS_REF } from '../wire/message.js';

/** A task member: its task name and queue, and its arguments when they are bound (`b`). */
export interface TaskNode {
  k: 't';
  t: string;
  q: string;
  /** 1: the arguments are `a`; absent: the previous member's result is the arguments. */
  b?: 1;
  a?: unknown;
  /** Parent node (-1 for the root) and position in it. */
  p: number;
  i: number;
}

/** A chain (`c`: one after the other) or a group (`g`: side by side) of member nodes. */
export interface ListNode {
  k: 'c' | 'g';
  m: number[];
  p: number;
  i: number;
}

export type CanvasNode = TaskNode | ListNode;

/** The stored definition (field `d` of the canvas's hash). */
export interface CanvasDefinition {
  /** Format version. */
  v: 1;
  /** The canvas's local id (`<ms>-c<hex>`). */
  id: string;
  /** Home queue: where the canvas's state, record and completion event live. */
  q: string;
  /** When it was enqueued, ms. */
  at: number;
  /** The nodes; 0 is the root. */
  n: CanvasNode[];
}

/** A new canvas local id: a task local id (`<ms>-<lowercase alnum>`), so the canvas is waited on as a task. */
export function newCanvasLocal(now: number): string {
  return `${now}-c${randomBytes(6).toString('hex')}`;
}

/** The task id (local part) of the member at `node`. */
export function memberLocal(def: CanvasDefinition, node: number): string {
  return `${def.id}n${node}`;
}

/** The reference a member's message carries (meta `c`): `<canvas local>@<home queue>:<node>`. */
export function memberRef(def: CanvasDefinition, node: number): string {
  return `${def.id}@${def.q}:${node}`;
}

/** A member reference, parsed; throws `E_CANVAS` when it is not one. */
export function parseRef(ref: string): { canvas: string; home: string; node: number } {
  if (!CANVAS_REF.test(ref)) {
    throw new TasukiError('E_CANVAS', `"${ref.slice(0, 100)}" is not a canvas member reference`);
  }
  const at = ref.indexOf('@');
  const colon = ref.lastIndexOf(':');
  return { canvas: ref.slice(0, at), home: ref.slice(at + 1, colon), node: Number(ref.slice(colon + 1)) };
}

/** Reads a stored definition; throws `E_CANVAS` when it is not one this version knows. */
export function decodeDefinition(raw: string): CanvasDefinition {
  const def = JSON.parse(raw) as CanvasDefinition;
  if (def?.v !== 1 || !Array.isArray(def.n)) {
    throw new TasukiError(
      'E_CANVAS',
      `canvas definition of format ${String(def?.v)} is not one this tasuki knows`,
    );
  }
  return def;
}
