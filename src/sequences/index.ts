/** Sequences (採番): monotonic ids per name on Redis, PostgreSQL or MySQL/MariaDB (docs/keyspaces.md). */
export type { Sequence } from './sequence.js';
export { defineSequence, RedisSequence, type RedisSequenceOptions, type SequenceHost } from './redis.js';
export { MySqlSequence, PostgresSequence, SEQUENCE_TABLE, type SqlSequenceOptions } from './sql.js';
