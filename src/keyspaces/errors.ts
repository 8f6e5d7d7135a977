import { TasukiError, type FieldIssue } from '../errors.js';

/** Why a stored value could not be used. */
export type KeyValueProblem =
  /** The value (after any migration) does not match the keyspace's schema. */
  | 'schema'
  /** The value is at an older format version and no migration from it is declared. */
  | 'no-migration'
  /** The value is at a newer format version than this code knows (a newer app wrote it). */
  | 'newer'
  /** The value has no envelope, or its payload does not decode with its codec. */
  | 'undecodable'
  /** A declared migration threw. */
  | 'migration-failed';

/**
 * A value in an app keyspace could not be read or written as declared: `E_KEY_VALUE`, with the
 * keyspace, the key, the format versions involved and (for `schema`) the field issues.
 */
export class KeyValueError extends TasukiError {
  readonly keyspace: string;
  readonly key: string;
  readonly problem: KeyValueProblem;
  /** Format version of the stored value, when known. */
  readonly storedVersion: number | undefined;
  /** Format version this code reads and writes. */
  readonly version: number;
  readonly issues: readonly FieldIssue[];

  constructor(
    a: {
      keyspace: string;
      key: string;
      problem: KeyValueProblem;
      version: number;
      storedVersion?: number | undefined;
      issues?: readonly FieldIssue[];
      detail: string;
    },
    options?: { cause?: unknown },
  ) {
    super('E_KEY_VALUE', `keyspace "${a.keyspace}", key "${a.key}": ${a.detail}`, options);
    this.keyspace = a.keyspace;
    this.key = a.key;
    this.problem = a.problem;
    this.storedVersion = a.storedVersion;
    this.version = a.version;
    this.issues = a.issues ?? [];
  }
}
