/** A payload store from a string: a `postgres://` URL or a directory path (app option, CLI, env). */
import { FileSystemPayloadStore } from './filesystem.js';
import { PostgresPayloadStore } from './postgres.js';
import type { PayloadStore } from './store.js';

/**
 * `postgres://…` / `postgresql://…` → {@link PostgresPayloadStore} (its own pool, table
 * `tasuki_payloads`); anything else is a directory → {@link FileSystemPayloadStore}.
 */
export function openPayloadStore(spec: string): PayloadStore {
  if (/^postgres(ql)?:\/\//i.test(spec)) return new PostgresPayloadStore({ connectionString: spec });
  return new FileSystemPayloadStore(spec);
}
