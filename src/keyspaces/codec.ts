/**
 * Value codecs of app keyspaces: JSON (readable with redis-cli, any language) and MessagePack
 * (smaller and faster for binary-heavy values), through msgpackr. The codec is named in every
 * value's envelope, so a keyspace can change codec in a new format version and still read old
 * values.
 */
import { Packr } from 'msgpackr';
import { TasukiError } from '../errors.js';

/** Codecs an app keyspace can use. */
export type CodecName = 'json' | 'msgpack';

/** Every codec, for option checks. */
export const CODECS: readonly CodecName[] = ['json', 'msgpack'];

/** Encodes and decodes values of one codec. */
export interface Codec {
  readonly name: CodecName;
  encode(value: unknown): Buffer;
  decode(payload: Buffer): unknown;
}

const json: Codec = {
  name: 'json',
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) {
      throw new TasukiError(
        'E_KEY_VALUE',
        `a ${typeof value} cannot be stored as JSON; store an object, array, string, number, boolean or null`,
      );
    }
    return Buffer.from(text, 'utf8');
  },
  decode(payload) {
    return JSON.parse(payload.toString('utf8')) as unknown;
  },
};

// No records extension: plain MessagePack that any other implementation reads.
const packr = new Packr({ useRecords: false, moreTypes: false });

const msgpack: Codec = {
  name: 'msgpack',
  encode: (value) => packr.pack(value),
  decode: (payload) => packr.unpack(payload) as unknown,
};

const CODEC_BY_NAME: Readonly<Record<CodecName, Codec>> = { json, msgpack };

/** The codec with this name, or `undefined` for a name tasuki does not know. */
export function codecNamed(name: string): Codec | undefined {
  return Object.hasOwn(CODEC_BY_NAME, name) ? CODEC_BY_NAME[name as CodecName] : undefined;
}
