/**
 * App keyspaces: typed, versioned, owned keys with a TTL on every write (see docs/keyspaces.md).
 */
export { defineKeyspace } from './define.js';
export { AppKeyspace, type KeyspaceHost, type WriteOptions } from './keyspace.js';
export type { KeyspaceOptions, GetOrSetOptions } from './options.js';
export type { Migration } from './format.js';
export { KeyValueError, type KeyValueProblem } from './errors.js';
export type { CodecName } from './codec.js';
