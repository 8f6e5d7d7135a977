/**
 * Priority levels on the wire: how many there are, where a task's level is carried (its message's
 * meta `l`), and how a worker names a delivery of a level stream. Part of the wire contract (see
 * docs/control.md, "Priorities").
 */

/** Priority levels: 0 (the default) to `PRIORITY_LEVELS - 1`; higher levels are served first. */
export const PRIORITY_LEVELS = 4;

/** The highest priority level. */
export const MAX_PRIORITY = PRIORITY_LEVELS - 1;

/**
 * Where a delivery sits in a queue, as the worker names it: the stream entry id for level 0 (the
 * queue's own stream, so a queue without levels names its entries as before), `<entry>p<level>` for
 * an entry of a level stream (`1732391234567-0p3`). Entry ids of two streams may be equal; their
 * references never are. A task enqueued at once on a level takes its reference as its local id.
 */
export function entryRef(entry: string, level: number): string {
  return level === 0 ? entry : `${entry}p${level}`;
}

/** The level and stream entry id of an entry reference (see {@link entryRef}). */
export function parseEntryRef(ref: string): { entry: string; level: number } {
  const n = ref.length;
  // `p<digit>` at the end: one char compare for a level 0 entry (which ends in a digit).
  if (n > 2 && ref.charCodeAt(n - 2) === 112 /* p */) {
    const level = ref.charCodeAt(n - 1) - 48;
    if (level >= 1 && level <= MAX_PRIORITY) return { entry: ref.slice(0, n - 2), level };
  }
  return { entry: ref, level: 0 };
}

/** The level of an entry reference. */
export function levelOfRef(ref: string): number {
  return parseEntryRef(ref).level;
}
