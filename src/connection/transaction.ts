/** Pipelines and MULTIs whose failure says what was being done and that nothing was written. */
import type { ChainableCommander } from 'ioredis';
import { redisError, TasukiError } from '../errors.js';

/**
 * Runs a pipeline or MULTI and returns its replies; a Redis refusal (OOM, ...) becomes an `E_REDIS`
 * error that says what was being done and that it was not written.
 */
export async function execTransaction(tx: ChainableCommander, what: string): Promise<unknown[]> {
  let results: [Error | null, unknown][] | null;
  try {
    results = await tx.exec();
  } catch (err) {
    // EXECABORT says only that Redis discarded the transaction; the refusal of the queued command
    // (e.g. OOM) is what tells an operator what to do.
    const previous = (err as { previousErrors?: unknown[] }).previousErrors?.[0];
    throw redisError(what, previous ?? err);
  }
  if (!results)
    throw new TasukiError('E_REDIS', `${what} was aborted by Redis; nothing was written. Try again.`);
  const failed = results.find(([e]) => e);
  if (failed?.[0]) throw redisError(what, failed[0]);
  return results.map(([, r]) => r);
}
