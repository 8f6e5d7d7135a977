/**
 * Redis Cluster key slots: which slot a key hashes to (CRC16 of its hash tag, mod 16384), and
 * grouping keys by slot, so a command over several keys (XREADGROUP, XREAD over several queues)
 * is split into one command per slot instead of being refused with CROSSSLOT.
 */

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ b) & 0xff] as number);
  return crc;
}

/** The cluster slot of a key: the hash tag (`{...}`, when not empty) decides, as in Redis. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % 16384;
}

/** Items grouped by the slot of their key, in first-seen order. */
export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = slotOf(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}

/** Longest blocking read on one slot group while others wait their turn, ms. */
export const SLOT_SLICE_MS = 200;

/**
 * Reads over keys in several slots of a cluster, with one connection per node (no reader per queue):
 * first a read without BLOCK of each slot group in turn, starting at `turn` (so every group gets to
 * go first), until `want` items came; when none came, one blocking read of the group whose turn it
 * is, for at most {@link SLOT_SLICE_MS}. A task in another group waits at most that long.
 */
export async function readAcrossSlots<G, R>(
  groups: readonly G[],
  turn: number,
  want: number,
  blockMs: number,
  read: (group: G, count: number, blockMs: number | undefined) => Promise<R[]>,
): Promise<R[]> {
  const out: R[] = [];
  const n = groups.length;
  for (let i = 0; i < n && out.length < want; i++) {
    out.push(...(await read(groups[(turn + i) % n] as G, want - out.length, undefined)));
  }
  if (out.length > 0 || n === 0) return out;
  return read(groups[turn % n] as G, want, Math.min(blockMs, SLOT_SLICE_MS));
}
