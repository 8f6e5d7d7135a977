/**
 * The envelope of app keyspace values: one short text line before the encoded value, so anyone
 * (the audit with a bounded GETRANGE, `tasuki keys migrate`, an older app version) can tell a
 * value's format version, codec, owner, writer and write time without decoding it. Redis keeps no
 * creation time of its own; this is where it lives.
 *
 * ```text
 * TK1 <version> <codec> <writtenAtMs> <owner> <writer>\n<encoded value>
 * ```
 */

/** First word of every envelope; a new layout would be `TK2`. */
export const ENVELOPE_MAGIC = 'TK1';
/** Longest header, in bytes: the audit reads this much of a value's head. */
export const MAX_HEADER_BYTES = 256;
/** Longest owner or writer word kept in a header (longer ones are cut). */
const MAX_WORD = 64;

/** What an envelope says about its value. */
export interface EnvelopeHeader {
  /** Format version of the value. */
  version: number;
  /** Codec of the payload: `json` or `msgpack`. */
  codec: string;
  /** When the value was written, ms since the epoch (the writer's clock). */
  writtenAt: number;
  /** Owner of the keyspace that wrote it. */
  owner: string;
  /** Who wrote it: the app's writer name, else `<hostname>:<pid>`. */
  writer: string;
}

/** A word as a header carries it: no whitespace, at most 64 characters, never empty. */
export function headerWord(s: string): string {
  const w = s.replace(/\s+/g, '_').slice(0, MAX_WORD);
  return w === '' ? '-' : w;
}

/** The header line (with its newline) for a value. */
export function encodeHeader(h: EnvelopeHeader): Buffer {
  return Buffer.from(
    `${ENVELOPE_MAGIC} ${h.version} ${headerWord(h.codec)} ${Math.trunc(h.writtenAt)} ${headerWord(h.owner)} ${headerWord(h.writer)}\n`,
    'latin1',
  );
}

const HEADER = /^TK1 (\d{1,9}) (\S+) (\d{1,16}) (\S+) (\S+)$/;

/** The header at the start of a value's head read as text (the audit's GETRANGE), if it has one. */
export function parseHeaderText(head: string): EnvelopeHeader | undefined {
  const nl = head.indexOf('\n');
  if (nl < 0 || nl > MAX_HEADER_BYTES || !head.startsWith('TK1 ')) return undefined;
  const m = HEADER.exec(head.slice(0, nl));
  if (!m) return undefined;
  return {
    version: Number(m[1]),
    codec: m[2] as string,
    writtenAt: Number(m[3]),
    owner: m[4] as string,
    writer: m[5] as string,
  };
}

/**
 * Reads the header at the start of `raw`: the header and where the payload starts, or `undefined`
 * when `raw` does not start with an envelope (a value written by something else).
 */
export function parseHeader(raw: Buffer): { header: EnvelopeHeader; payloadOffset: number } | undefined {
  const nl = raw.indexOf(10);
  if (nl < 0 || nl > MAX_HEADER_BYTES) return undefined;
  const m = HEADER.exec(raw.toString('latin1', 0, nl));
  if (!m) return undefined;
  return {
    header: {
      version: Number(m[1]),
      codec: m[2] as string,
      writtenAt: Number(m[3]),
      owner: m[4] as string,
      writer: m[5] as string,
    },
    payloadOffset: nl + 1,
  };
}
