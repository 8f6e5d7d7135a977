/**
 * A waiting, delayed or running task's message by id — its arguments or their claim check — read
 * where it is: the parked hash (delayed tasks, and where promoted or handed-back ones sit in the
 * stream), else the stream entry whose id is the task id (on its priority level's stream). Two
 * commands at most.
 */
import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import { queueStreams, type TasukiKeys } from '../keys/tasuki-keys.js';
import { parseEntryRef } from '../wire/priority.js';
import { parseTaskId } from '../wire/ids.js';
import { decodeMessage, messageOf, type PayloadClaim } from '../wire/message.js';

/** A task's message as tools show it. */
export interface TaskMessageView {
  task: string;
  attempt: number;
  /** The arguments' JSON, cut to `maxBytes` characters (`argsBytes` is its whole length). */
  args: string;
  argsBytes: number;
  truncated: boolean;
  /** Arguments in the payload store: where. */
  claim?: PayloadClaim;
}

/** `undefined` when the task has no message in Redis (finished, or unknown). */
export async function taskMessage(
  redis: RedisConnection,
  keys: TasukiKeys,
  id: string,
  maxBytes = 64 * 1024,
): Promise<TaskMessageView | undefined> {
  const { local, queue } = parseTaskId(id);
  let raw: string | undefined;
  try {
    const parked = await redis.hget(keys.parked.key({ queue }), local);
    const entry = parked?.startsWith('=') ? parked.slice(1) : parked ? undefined : local;
    if (parked && !parked.startsWith('=')) raw = parked;
    else if (entry && /^\d+-\d+(p\d)?$/.test(entry)) {
      // An entry of a priority level's stream is named `<entry id>p<level>`.
      const at = parseEntryRef(entry);
      const stream = queueStreams(keys, queue)[at.level] ?? keys.stream.key({ queue });
      const found = await redis.xrange(stream, at.entry, at.entry);
      const fields = found[0]?.[1];
      if (fields) raw = messageOf(fields);
    }
  } catch (err) {
    throw redisError(`reading the message of task ${id}`, err, { wrote: false });
  }
  if (raw === undefined) return undefined;
  const m = decodeMessage(raw);
  const args = m.claim ? '' : (JSON.stringify(m.args) ?? '');
  return {
    task: m.name,
    attempt: m.attempt ?? 1,
    args: args.length > maxBytes ? args.slice(0, maxBytes) : args,
    argsBytes: Buffer.byteLength(args),
    truncated: args.length > maxBytes,
    ...(m.claim ? { claim: m.claim } : {}),
  };
}
