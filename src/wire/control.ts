/**
 * The control message: what a queue's control stream carries to its workers (field `k`, see
 * fields.ts). Lua scripts write it (revoke.lua, pause.lua); workers read it (src/control/follower.ts).
 * JSON, one object: `{"op":"revoke","id":"<local>","e":"<entry>","by":"host:pid","at":ms}`; `id`
 * and `e` only for ops about a task, `e` only when a worker held the task when it was written.
 * `{"op":"levels","l":3,"at":ms}` says the queue has a stream for priority level 3 now (written by
 * the script that made it, on the first task of that level): its workers read it from then on.
 */

/** What a control message asks of the queue's workers. */
export type ControlOp = 'revoke' | 'cancel' | 'pause' | 'resume' | 'levels';

export interface ControlMessage {
  op: ControlOp;
  /** The task's local id (revoke, cancel). */
  id?: string;
  /** The stream entry a worker holds for the task (revoke, cancel of a fetched task). */
  e?: string;
  /** The priority level whose stream was made (`levels`). */
  l?: number;
  /** Who asked (absent on `levels`). */
  by: string;
  /** When (ms, the asker's clock). */
  at: number;
}

const OPS: ReadonlySet<string> = new Set(['revoke', 'cancel', 'pause', 'resume', 'levels']);

/** A control message from its JSON; `undefined` for one this version does not know (skipped). */
export function decodeControl(raw: string | undefined): ControlMessage | undefined {
  if (raw === undefined) return undefined;
  try {
    const m = JSON.parse(raw) as Partial<ControlMessage> | null;
    if (!m || typeof m.op !== 'string' || !OPS.has(m.op)) return undefined;
    return m as ControlMessage;
  } catch {
    return undefined;
  }
}
