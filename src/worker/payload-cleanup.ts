/**
 * Deleting the payloads of tasks finished for good (succeeded, or expired unrun) once their outcome
 * is recorded — not before, so a worker that dies in between leaves a task that still finds its
 * arguments when it runs again. Retried and dead-lettered tasks keep theirs (a dead letter's payload
 * goes when it is purged, see src/deadletters/); whatever is left expires by the payload TTL.
 */
import type { Logger } from '../log/logger.js';
import type { PayloadStore } from '../payloads/store.js';
import type { Attempt } from './runner.js';

/** Deletes, in one call and in the background, the payloads of the `done` attempts among these. */
export function deleteFinishedPayloads(store: PayloadStore, attempts: readonly Attempt[], log: Logger): void {
  let refs: string[] | undefined;
  for (const a of attempts) {
    const ref = a.outcome === 'done' ? a.held.message?.claim?.ref : undefined;
    if (ref !== undefined) (refs ??= []).push(ref);
  }
  if (!refs) return;
  const count = refs.length;
  void store.delete(refs).catch((err: unknown) => {
    log.warn({ err, count }, 'could not delete the payloads of finished tasks; they expire by payloads.ttl');
  });
}
