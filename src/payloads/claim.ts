/**
 * Claim checks: turning arguments into a payload plus the claim a message carries (ref, SHA-256,
 * size), and a claim back into arguments, verified. The same checks for every store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PayloadStoreError, TasukiError } from '../errors.js';
import type { PayloadClaim } from '../wire/message.js';
import type { NewPayload, PayloadStore } from './store.js';

/** A new payload and the claim that names it. */
export interface Claimed {
  claim: PayloadClaim;
  payload: NewPayload;
}

/** Cuts `json` (the arguments' JSON) into a payload kept until `expiresAt` and its claim. */
export function claimOf(json: string, expiresAt: number): Claimed {
  const data = Buffer.from(json, 'utf8');
  const sha256 = createHash('sha256').update(data).digest('hex');
  // 128 random bits, base64url: 22 characters, safe as a file name and a key.
  const ref = randomBytes(16).toString('base64url');
  return { claim: { ref, sha256, size: data.length }, payload: { ref, data, sha256, expiresAt } };
}

/** A claim whose payload the store does not have (deleted, expired, or another store). */
export class PayloadMissingError extends TasukiError {
  readonly ref: string;

  constructor(ref: string, store: string) {
    super(
      'E_PAYLOAD_MISSING',
      `the task's arguments (payload ${ref}) are not in the payload store (${store}): deleted, expired ` +
        '(payloads.ttl), or the worker uses another store than the producer. The task cannot run.',
    );
    this.ref = ref;
  }
}

/** A payload whose bytes do not match its claim: changed or corrupted since it was written. */
export class PayloadMismatchError extends TasukiError {
  readonly ref: string;

  constructor(ref: string, detail: string) {
    super(
      'E_PAYLOAD_MISMATCH',
      `the task's arguments (payload ${ref}) do not match the message's claim: ${detail}. ` +
        'They were changed or corrupted in the store; the task is not run on them.',
    );
    this.ref = ref;
  }
}

/**
 * Loads a claim's payload, checks its size and SHA-256, and parses it. Throws
 * {@link PayloadMissingError} or {@link PayloadMismatchError} (the task can never run), or
 * {@link PayloadStoreError} when the store failed (try again later).
 */
export async function loadClaimed(store: PayloadStore, claim: PayloadClaim): Promise<unknown> {
  let data: Buffer | null;
  try {
    data = await store.get(claim.ref);
  } catch (err) {
    throw new PayloadStoreError(`loading payload ${claim.ref} from ${store.description}`, err);
  }
  if (data === null) throw new PayloadMissingError(claim.ref, store.description);
  if (data.length !== claim.size) {
    throw new PayloadMismatchError(claim.ref, `${data.length} bytes where the claim says ${claim.size}`);
  }
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (sha256 !== claim.sha256) {
    throw new PayloadMismatchError(claim.ref, `SHA-256 ${sha256}, the claim says ${claim.sha256}`);
  }
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch (err) {
    throw new PayloadMismatchError(claim.ref, `not JSON (${(err as Error).message})`);
  }
}
