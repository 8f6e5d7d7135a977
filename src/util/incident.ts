/** Logging a failing operation once per incident, not once per attempt. */
import type { Logger } from '../log/logger.js';

/**
 * Logs a failing operation once per incident instead of once per attempt: the first error is
 * logged, repeats are counted, and the recovery is logged with the count.
 */
export class Incident {
  private failures = 0;

  constructor(
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  fail(err: unknown): void {
    if (this.failures++ === 0) {
      this.log.error({ err }, `${this.what} failed; retrying (logged once until it recovers)`);
    }
  }

  ok(): void {
    if (this.failures > 0) {
      this.log.info({ failures: this.failures }, `${this.what} recovered`);
      this.failures = 0;
    }
  }
}
