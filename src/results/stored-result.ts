/**
 * Results too big for Redis live in the payload store; the task record carries their claim. This
 * loads one, verified, for `handle.result()` and `app.getTask()`, so callers never see the claim.
 */
import { TasukiError } from '../errors.js';
import { loadClaimed } from '../payloads/claim.js';
import type { PayloadStore } from '../payloads/store.js';
import type { PayloadClaim } from '../wire/message.js';

/**
 * The result a claim names. Throws `E_CONFIG` without a store, `E_PAYLOAD_MISSING` (expired, or
 * another store), `E_PAYLOAD_MISMATCH`, or `E_PAYLOAD_STORE` (the store failed; try again).
 */
export async function loadResult(
  store: PayloadStore | undefined,
  id: string,
  claim: PayloadClaim,
): Promise<unknown> {
  if (!store) {
    throw new TasukiError(
      'E_CONFIG',
      `the result of task ${id} is in a payload store (claim ${claim.ref}) and this app has none; ` +
        "configure the workers' store (payloads.store or TASUKI_PAYLOAD_STORE)",
    );
  }
  return loadClaimed(store, claim);
}
