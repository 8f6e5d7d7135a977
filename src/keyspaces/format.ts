/**
 * One keyspace's value format: the envelope (format version, codec, owner, writer, written-at)
 * around the codec's bytes, the declared migrations from older versions, and the schema check on
 * read and write. Pure: no Redis here, so `tasuki keys migrate` and the keyspace share it.
 */
import { encodeHeader, parseHeader, type EnvelopeHeader } from '../keys/envelope.js';
import type { KeyValueFormat } from '../keys/registry.js';
import { validate, type StandardSchemaV1 } from '../task/schema.js';
import { codecNamed, type Codec } from './codec.js';
import { KeyValueError } from './errors.js';

/** A migration from format version `n` (its key in `migrations`) to `n + 1`. */
export type Migration = (value: unknown) => unknown;

/** What a stored value turned out to be. */
export type Decoded<T> =
  /** At the current version (or migrated to it: then `raw` should be rewritten as `migrated`). */
  | { state: 'current'; value: T; header: EnvelopeHeader; migrated?: Buffer }
  /** Written by a newer app version: this code cannot read it. */
  | { state: 'newer'; header: EnvelopeHeader };

export interface FormatSpec<T> {
  keyspace: string;
  owner: string;
  version: number;
  codec: Codec;
  schema: StandardSchemaV1<unknown, T>;
  migrations: Readonly<Record<number, Migration>>;
  writer: string;
}

export class ValueFormat<T> implements KeyValueFormat {
  constructor(readonly spec: FormatSpec<T>) {}

  private error(
    key: string,
    e: Omit<ConstructorParameters<typeof KeyValueError>[0], 'keyspace' | 'key' | 'version'>,
    cause?: unknown,
  ): KeyValueError {
    return new KeyValueError(
      { keyspace: this.spec.keyspace, key, version: this.spec.version, ...e },
      cause === undefined ? undefined : { cause },
    );
  }

  private async checked(key: string, value: unknown, stored: number | undefined, when: string): Promise<T> {
    const r = await validate(this.spec.schema, value);
    if (r.ok) return r.value;
    const shown = r.issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    throw this.error(key, {
      problem: 'schema',
      storedVersion: stored,
      issues: r.issues,
      detail: `${when} does not match the schema of format v${this.spec.version}: ${shown}. ${
        when === 'the value to write'
          ? 'Fix the value; nothing was written.'
          : 'A writer broke the format without a version bump: bump `version` and declare a migration, or delete the key.'
      }`,
    });
  }

  /** The envelope and payload for a value, after the schema check. */
  async encode(key: string, value: T, now = Date.now()): Promise<Buffer> {
    const checked = await this.checked(key, value, undefined, 'the value to write');
    const header = encodeHeader({
      version: this.spec.version,
      codec: this.spec.codec.name,
      writtenAt: now,
      owner: this.spec.owner,
      writer: this.spec.writer,
    });
    return Buffer.concat([header, this.spec.codec.encode(checked)]);
  }

  /**
   * Decodes a stored value: at the current version it is checked and returned; at an older one it
   * is migrated step by step, checked, and re-encoded (`migrated`); at a newer one it is `newer`.
   */
  async decode(key: string, raw: Buffer): Promise<Decoded<T>> {
    const parsed = parseHeader(raw);
    if (!parsed) {
      throw this.error(key, {
        problem: 'undecodable',
        detail: `the value (${raw.length} bytes, starting ${JSON.stringify(raw.toString('latin1', 0, 24))}) has no tasuki envelope: something other than this keyspace wrote it. Find the writer (tasuki keys audit), or delete the key.`,
      });
    }
    const { header, payloadOffset } = parsed;
    const stored = header.version;
    if (stored > this.spec.version) return { state: 'newer', header };
    const codec = codecNamed(header.codec);
    let value: unknown;
    try {
      if (!codec) throw new Error(`unknown codec "${header.codec}"`);
      value = codec.decode(raw.subarray(payloadOffset));
    } catch (err) {
      throw this.error(
        key,
        {
          problem: 'undecodable',
          storedVersion: stored,
          detail: `the v${stored} value does not decode as ${header.codec} (${err instanceof Error ? err.message : String(err)}); delete the key to let it be recomputed.`,
        },
        err,
      );
    }
    for (let v = stored; v < this.spec.version; v++) {
      const step = this.spec.migrations[v];
      if (!step) {
        throw this.error(key, {
          problem: 'no-migration',
          storedVersion: stored,
          detail: `the value is format v${stored} and this code reads v${this.spec.version}, with no migration from v${v} to v${v + 1}. Declare migrations: { ${v}: (old) => ... } or delete the old values.`,
        });
      }
      try {
        value = await step(value);
      } catch (err) {
        throw this.error(
          key,
          {
            problem: 'migration-failed',
            storedVersion: stored,
            detail: `the migration from v${v} to v${v + 1} threw: ${err instanceof Error ? err.message : String(err)}`,
          },
          err,
        );
      }
    }
    const checked = await this.checked(
      key,
      value,
      stored,
      stored === this.spec.version ? 'the stored value' : `the value migrated from v${stored}`,
    );
    if (stored === this.spec.version) return { state: 'current', value: checked, header };
    return { state: 'current', value: checked, header, migrated: await this.encode(key, checked) };
  }

  /** For `tasuki keys migrate`: the value at the current version, or `undefined` if it is not older. */
  async upgrade(raw: Buffer, key = '(migrate)'): Promise<Buffer | undefined> {
    const d = await this.decode(key, raw);
    return d.state === 'current' ? d.migrated : undefined;
  }
}
