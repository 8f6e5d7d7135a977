/**
 * The names on the wire: consumer group and stream field names. TypeScript imports them from here;
 * Lua scripts spell them as `$NAME` tokens that the script catalogue replaces with these values when
 * it loads a script (see src/scripts/catalogue.ts), so no literal is written twice.
 */

import { MAX_PRIORITY } from './priority.js';

/** Stream consumer group every tasuki worker of a queue reads through. */
export const GROUP = 'tasuki';

/**
 * The newest message format this version of tasuki writes and reads. The format is carried by the
 * stream field's name: version 1 is field `m`, version n > 1 is field `m<n>`. A worker that meets a
 * higher version leaves the entry for a newer worker (see docs/reliability.md, "rolling deploys").
 * Version 2 is a claim-checked message (arguments in the payload store, see docs/payloads.md); tasks
 * with small arguments keep writing version 1.
 */
export const MESSAGE_VERSION = 2;

/** Stream field of a queue entry holding a version 1 message (arguments inline). */
export const MESSAGE_FIELD = 'm';

/**
 * Stream field of a queue entry holding a version 2 message (a claim check: `{"t":…,"p":{ref,…}}`).
 * Its text starts with `{` where a version 1 message starts with `[`, so a Lua script that moves a
 * message it was not handed with its field (promotion, hand-back, dead-letter retry) picks the
 * field from the first byte.
 */
export const CLAIM_MESSAGE_FIELD = 'm2';

/** Stream field of a dead-letter entry holding the dead letter (JSON). */
export const DEAD_FIELD = 'd';

/** Completion event field: space-separated local ids of the tasks that finished. */
export const EVENT_IDS_FIELD = 'f';

/**
 * Completion event field: records, one JSON per line, in id order — every record of a small batch;
 * in a big batch only those of tasks that keep none under their result key (`storeResult: false`),
 * the other lines empty.
 */
export const EVENT_RECORDS_FIELD = 'r';

/**
 * How long completion events carrying the records of tasks that keep none (`storeResult: false`)
 * are kept at most, ms: waiters read them as they come; a waiter that starts late searches them.
 */
export const EVENTS_RECORDS_KEPT_MS = 60_000;

/** Stream field of a channel entry holding the published message (JSON). */
export const CHANNEL_FIELD = 'c';

/**
 * Name of the internal task that carries a canvas member's outcome on (see docs/canvas.md): the
 * settle step appends `["tasuki.canvas",{"c":<member ref>,"r":<record>}]` to the member's queue.
 */
export const CANVAS_TASK = 'tasuki.canvas';
/** Stream field of a queue's control entry holding a control message (JSON, see src/wire/control.ts). */
export const CONTROL_FIELD = 'k';

/**
 * Outbox entry fields (a queue's outbox on Redis, for a broker that is not Redis: see
 * src/broker/rabbitmq-outbox.ts): the task's local id, and its message as the broker publishes it.
 */
export const OUTBOX_ID_FIELD = 'i';
export const OUTBOX_MESSAGE_FIELD = 'm';

/**
 * Approximate cap of each queue's control stream (XADD MAXLEN ~): revokes, cancels, pauses and the
 * announcements of new priority levels.
 */
export const CONTROL_MAX_LEN = 1000;

/** Every token a Lua script may use, by name (`$MESSAGE_FIELD` in a script). */
export const LUA_TOKENS: Readonly<Record<string, string>> = {
  GROUP,
  MESSAGE_FIELD,
  CLAIM_MESSAGE_FIELD,
  DEAD_FIELD,
  EVENT_IDS_FIELD,
  EVENT_RECORDS_FIELD,
  CHANNEL_FIELD,
  CANVAS_TASK,
  CONTROL_FIELD,
  OUTBOX_ID_FIELD,
  OUTBOX_MESSAGE_FIELD,
  EVENTS_RECORDS_KEPT_MS: String(EVENTS_RECORDS_KEPT_MS),
  CONTROL_MAX_LEN: String(CONTROL_MAX_LEN),
  MAX_PRIORITY: String(MAX_PRIORITY),
};

/** The value of a stream entry's field, or `undefined`. */
export function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
