/**
 * The payload store contract: where a claim check keeps task arguments too big for a Redis stream
 * entry (the incident in ../shared/seeds/BRIEF.md: 10 KB raw input per task in Redis, then OOM).
 * Implementations live beside it — filesystem.ts (one host), postgres.ts (shared) — and the one
 * conformance suite in test/payloads/ runs against each. A store only keeps bytes by ref; hashing and
 * verification are claim.ts's, so every store is checked the same way.
 */

/** A payload to keep: its ref, its bytes (UTF-8 JSON) and when it may be deleted. */
export interface NewPayload {
  /** Id, unique per payload (see `PAYLOAD_REF`). */
  ref: string;
  /** The bytes (the arguments' JSON). */
  data: Buffer;
  /** SHA-256 of `data`, lowercase hex (kept for inspection; the worker checks the message's). */
  sha256: string;
  /** When the payload expires (ms since epoch): `gc()` deletes it after that. */
  expiresAt: number;
}

/**
 * Where claim-checked arguments are kept. Writes are durable when they resolve; every method may be
 * called concurrently, from any number of processes sharing the store.
 */
export interface PayloadStore {
  /** What the store is, for logs and errors, e.g. `filesystem /var/lib/app/payloads`. */
  readonly description: string;
  /** Keeps one payload. Resolves once it is durable. */
  put(payload: NewPayload): Promise<void>;
  /** Keeps many payloads in one call (bulk enqueue): all of them, or rejects. */
  putMany(payloads: readonly NewPayload[]): Promise<void>;
  /** The payload's bytes, or `null` when the store has none by that ref. */
  get(ref: string): Promise<Buffer | null>;
  /** Deletes payloads; refs that are not there are ignored. Resolves how many were deleted. */
  delete(refs: readonly string[]): Promise<number>;
  /** Deletes every payload expired at `now` (default: the current time). Resolves how many. */
  gc(now?: number): Promise<number>;
  /** Creates what the store needs (a table, a directory). Idempotent; also done on first use. */
  migrate(): Promise<void>;
  /** Releases what the store holds open (connections). Safe to repeat. */
  close(): Promise<void>;
}
