import type { RedisConnection } from '../connection/redis.js';
import { redisError } from '../errors.js';
import type { KeyDef, Keyspace } from '../keys/registry.js';
import { registerScripts, run, sequenceNext } from '../scripts/catalogue.js';
import type { Duration } from '../util/duration.js';
import { duration, parseOptions, quote } from '../util/options.js';
import { z } from 'zod';
import { batchSize, idsEndingAt, sequenceName, type Sequence } from './sequence.js';

/** What a Redis sequence needs of the app: its key registry and Redis connection. */
export interface SequenceHost {
  readonly keyspace: Keyspace;
  redis(): Promise<RedisConnection>;
}

/** Options of {@link defineSequence}. */
export interface RedisSequenceOptions {
  /** Who owns the sequence (the service that issues its ids). */
  owner: string;
  /** Its name, e.g. `order`: the key is `<prefix>:v1:seq:<name>`. */
  name: string;
  /**
   * `clock` (default): ids stay above the Redis server clock in µs (about 1.8e15 today), so they keep
   * rising and stay unique when the counter is lost (restart without persistence, failover to a
   * replica that missed writes). `none`: a plain counter from 1, which starts again at 1 if lost.
   */
  floor?: 'clock' | 'none';
  /**
   * With `clock`: how far the counter may run ahead of the clock (default 1 s = 1,000,000 ids); a
   * caller asking for more waits. Uniqueness across a failover needs the failover to take longer.
   */
  maxAhead?: Duration;
  /** What the ids are for, for the catalogue. */
  purpose?: string;
}

const optionsSchema = z.strictObject({
  owner: z.string().regex(/^[A-Za-z0-9_./@-]{1,64}$/, 'owner must be 1-64 letters, digits or "_./@-"'),
  name: z.string(),
  floor: z.enum(['clock', 'none']).default('clock'),
  maxAhead: duration().default(1000),
  purpose: z.string().optional(),
});

/** A sequence on Redis: see {@link defineSequence}. */
export class RedisSequence implements Sequence {
  readonly name: string;
  private readonly aheadUs: number;

  /** @internal */
  constructor(
    private readonly host: SequenceHost,
    /** Its key declaration in the app's registry. */
    readonly def: KeyDef<string>,
    private readonly floor: 'clock' | 'none',
    aheadMs: number,
  ) {
    this.name = def.spec.id.slice('seq.'.length);
    this.aheadUs = aheadMs * 1000;
  }

  /** The counter's key. */
  key(): string {
    return this.def.key({});
  }

  next(): Promise<bigint>;
  next(n: number): Promise<bigint[]>;
  async next(n?: number): Promise<bigint | bigint[]> {
    const count =
      n === undefined ? 1 : batchSize(this.name, n, this.floor === 'clock' ? this.aheadUs : undefined);
    const redis = await this.host.redis();
    registerScripts(redis);
    for (;;) {
      let reply: [0 | 1, string];
      try {
        reply = await run(
          redis,
          sequenceNext({ counter: this.key() }, { n: count, floor: this.floor, aheadUs: this.aheadUs }),
        );
      } catch (err) {
        throw redisError(`sequence "${this.name}": allocating ${count} id(s)`, err);
      }
      if (reply[0] === 1) {
        const ids = idsEndingAt(BigInt(reply[1]), count);
        return n === undefined ? (ids[0] as bigint) : ids;
      }
      // Ahead of the clock by more than maxAhead: wait until it catches up (a rate cap of 1 id/µs).
      await new Promise((r) => setTimeout(r, Math.ceil(Number(reply[1]) / 1000)));
    }
  }
}

/**
 * Declares a sequence on the app's Redis, in its key registry (no TTL: the counter must outlive
 * every id). Ids rise and are unique per name; with the default clock floor they stay so across a
 * Redis restart or failover (see docs/keyspaces.md); there are gaps.
 *
 * @example
 * ```ts
 * const orders = defineSequence(app, { owner: 'shop', name: 'order' });
 * const id = await orders.next();        // 1764662400000123n
 * const batch = await orders.next(100);  // 100 rising ids in one round trip
 * ```
 */
export function defineSequence(app: SequenceHost, options: RedisSequenceOptions): RedisSequence {
  const o = parseOptions(optionsSchema, options, `sequence ${quote(options?.name)} options`, 'E_OPTIONS');
  const name = sequenceName(o.name);
  const def = app.keyspace.define({
    id: `seq.${name}`,
    pattern: `seq:${name}`,
    owner: o.owner,
    version: 1,
    type: 'string',
    noTtlReason: 'the last id issued; it must outlive every id it issued (one integer per sequence)',
    codec: o.floor === 'clock' ? 'integer: last id (>= the server clock in µs)' : 'integer: last id',
    maxBytes: 128,
    purpose: o.purpose ?? `Ids of the ${name} sequence.`,
  });
  return new RedisSequence(app, def, o.floor, o.maxAhead);
}
