/**
 * `defineKeyspace()`: an app declares a family of keys once — owner, name, format version, TTL (or
 * why none), codec, schema, migrations — and gets a typed {@link AppKeyspace}. The declaration goes
 * into the app's key registry beside tasuki's own keys, so `tasuki keys catalogue` lists it and
 * `tasuki keys audit` knows its owner, TTL and budget.
 */
import { hostname } from 'node:os';
import type { Keyspace } from '../keys/registry.js';
import type { StandardSchemaV1, InferOutput } from '../task/schema.js';
import { parseOptions, quote } from '../util/options.js';
import { codecNamed } from './codec.js';
import { ValueFormat } from './format.js';
import { AppKeyspace, type KeyspaceHost } from './keyspace.js';
import { keyspaceOptionsSchema, type KeyspaceOptions } from './options.js';

/**
 * Declares an app keyspace on `app` (any object with the app's `keyspace` registry, `redis()` and
 * `locks()`: a tasuki app) and returns its typed handle. Throws `E_OPTIONS` for a bad declaration
 * and `E_KEY` when the name is taken.
 *
 * @example
 * ```ts
 * const profiles = defineKeyspace(app, {
 *   owner: 'accounts', name: 'user.profile', version: 2, ttl: '1h', codec: 'msgpack',
 *   schema: z.object({ name: z.string(), plan: z.enum(['free', 'pro']) }),
 *   migrations: { 1: (v1) => ({ ...(v1 as object), plan: 'free' }) },
 * });
 * const p = await profiles.getOrSet(userId, () => loadProfile(userId));
 * ```
 */
export function defineKeyspace<S extends StandardSchemaV1>(
  app: KeyspaceHost & { readonly keyspace: Keyspace },
  options: KeyspaceOptions<S>,
): AppKeyspace<InferOutput<S>> {
  const o = parseOptions(
    keyspaceOptionsSchema,
    options,
    `keyspace ${quote(options?.name)} options`,
    'E_OPTIONS',
  );
  const format = new ValueFormat<InferOutput<S>>({
    keyspace: o.name,
    owner: o.owner,
    version: o.version,
    codec: codecNamed(o.codec) as NonNullable<ReturnType<typeof codecNamed>>,
    schema: o.schema,
    migrations: Object.fromEntries(Object.entries(o.migrations).map(([k, m]) => [Number(k), m])),
    writer: o.writer ?? `${hostname()}:${process.pid}`,
  });
  const def = app.keyspace.define({
    id: o.name,
    pattern: `${o.name}:<id>`,
    owner: o.owner,
    version: o.version,
    keyVersion: o.keyVersion,
    type: 'string',
    ...(o.ttl !== undefined ? { ttlMs: o.ttl } : { noTtlReason: o.noTtlReason }),
    codec: `${o.codec} in a tasuki envelope (format version, writer, written-at)`,
    maxBytes: o.maxBytes,
    purpose: o.purpose ?? `Values of the ${o.name} keyspace.`,
    format,
  });
  return new AppKeyspace(app, def, format, o);
}
