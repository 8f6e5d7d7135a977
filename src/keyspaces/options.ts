/** Options of app keyspaces, checked in one place. */
import { z } from 'zod';
import type { StandardSchemaV1 } from '../task/schema.js';
import { isStandardSchema } from '../task/schema.js';
import type { Duration } from '../util/duration.js';
import { duration, integer, quote } from '../util/options.js';
import { CODECS, type CodecName } from './codec.js';
import type { Migration } from './format.js';

/** Options of {@link defineKeyspace}. */
export interface KeyspaceOptions<S extends StandardSchemaV1> {
  /** Who owns these keys (the service or team that writes them and may delete them), e.g. `billing`. */
  owner: string;
  /** Name of the keyspace, e.g. `user.profile`: keys are `<prefix>:v<keyVersion>:<name>:<id>`. */
  name: string;
  /** Format version of the values (an integer >= 1); bump it when their shape changes. */
  version: number;
  /** TTL of every write (ms or `"10m"`); required unless {@link noTtlReason} says why there is none. */
  ttl?: Duration;
  /** Why these keys never expire; give it instead of `ttl`, and only with a real reason. */
  noTtlReason?: string;
  /** `json` (default) or `msgpack`. */
  codec?: CodecName;
  /** Any Standard Schema (zod, valibot...): values are checked against it on write and on read. */
  schema: S;
  /**
   * Migrations from older format versions: `{ 1: (v1) => v2, 2: (v2) => v3 }`. A value at an older
   * version is migrated on read and rewritten in place; without a migration its read throws
   * `E_KEY_VALUE` (`no-migration`).
   */
  migrations?: Record<number, Migration>;
  /**
   * What a read does with a value written by a newer format version (during a rolling deploy):
   * `ignore` (default) treats it as missing — `get` returns `undefined`, `getOrSet` computes but
   * does not overwrite it; `error` throws `E_KEY_VALUE` (`newer`).
   */
  onNewer?: 'ignore' | 'error';
  /** Version in the key name (default 1): bump it only when old values are useless (new keys). */
  keyVersion?: number;
  /** Memory budget per key in bytes (default 65536); the audit reports larger keys. */
  maxBytes?: number;
  /** What the keys are for, for the catalogue (default: "values of the <name> keyspace"). */
  purpose?: string;
  /** Writer recorded in each value's envelope (default `<hostname>:<pid>`). */
  writer?: string;
  /** Stampede protection of {@link AppKeyspace.getOrSet}. */
  getOrSet?: GetOrSetOptions;
}

/** How {@link AppKeyspace.getOrSet} keeps many missing callers to one computation. */
export interface GetOrSetOptions {
  /** TTL of the computing caller's lock, renewed while it computes (default 10 s). */
  lockTtl?: Duration;
  /** Longest a caller waits for another's computation before its fallback (default 5 s). */
  wait?: Duration;
  /** After `wait`: `compute` (default) computes and writes itself; `error` throws `E_LOCK_TIMEOUT`. */
  fallback?: 'compute' | 'error';
}

const NAME = /^[a-z][a-z0-9_.-]{0,47}$/;
const OWNER = /^[A-Za-z0-9_./@-]{1,64}$/;

const fn = z.custom<Migration>((v) => typeof v === 'function', {
  error: (i) => `${quote(i.input)} is not a function`,
});

export const keyspaceOptionsSchema = z
  .strictObject({
    owner: z
      .string()
      .regex(OWNER, 'owner must be 1-64 letters, digits or "_./@-" (e.g. "billing" or "shop/web")'),
    name: z
      .string()
      .regex(NAME, 'name must be a lower-case word like "user.profile" (letters, digits, "_.-"; up to 48)'),
    version: integer(1),
    ttl: duration().optional(),
    noTtlReason: z.string().trim().min(1, 'noTtlReason must say why').optional(),
    codec: z.enum(CODECS as [CodecName, ...CodecName[]]).default('json'),
    schema: z.custom<StandardSchemaV1>(isStandardSchema, {
      error: (i) => `${quote(i.input)} is not a Standard Schema (a zod, valibot or arktype schema)`,
    }),
    migrations: z
      .record(z.string().regex(/^[1-9]\d*$/, 'migration keys are format versions (1, 2...)'), fn)
      .default({}),
    onNewer: z.enum(['ignore', 'error']).default('ignore'),
    keyVersion: integer(1).default(1),
    maxBytes: integer(1).default(64 * 1024),
    purpose: z.string().optional(),
    writer: z.string().min(1).optional(),
    getOrSet: z
      .strictObject({
        lockTtl: duration().default(10_000),
        wait: duration({ min: 0 }).default(5000),
        fallback: z.enum(['compute', 'error']).default('compute'),
      })
      .default({ lockTtl: 10_000, wait: 5000, fallback: 'compute' }),
  })
  .superRefine((o, ctx) => {
    if ((o.ttl === undefined) === (o.noTtlReason === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ttl'],
        message:
          'give exactly one of ttl (every write sets it) and noTtlReason (why these keys never expire)',
      });
    }
    for (const k of Object.keys(o.migrations)) {
      if (Number(k) >= o.version) {
        ctx.addIssue({
          code: 'custom',
          path: ['migrations', k],
          message: `a migration from v${k} makes no sense at format version ${o.version}; migrations go from older versions up`,
        });
      }
    }
  });

/** The checked options, defaults applied. */
export type ResolvedKeyspaceOptions = z.output<typeof keyspaceOptionsSchema>;
