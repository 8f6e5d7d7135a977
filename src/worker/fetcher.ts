/**
 * The fetch loop of a worker: reads deliveries in batches of half its capacity, with up to two reads
 * in flight, so the next batch is on its way while the current one runs (no idle round trip).
 */
import type { Broker, Delivery } from '../broker/broker.js';
import type { Logger } from '../log/logger.js';
import { Incident } from '../util/incident.js';
import { within } from '../util/within.js';

/** What the fetch loop needs from its worker. */
export interface FetchHost {
  readonly name: string;
  readonly queues: readonly string[];
  /** Deliveries that take room now (waiting to run or running). */
  heldCount(): number;
  /** New deliveries: hold them and start what can start. */
  deliver(deliveries: Delivery[]): void;
  /** The broker could not be read (it is down, or refused). */
  outage(): void;
}

/** Pause after a failed read before the next, ms. */
const READ_RETRY_MS = 500;

export class Fetcher {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly reads = new Set<Promise<void>>();
  private wakeUp: (() => void) | undefined;
  private readonly incident: Incident;
  private readonly batch: number;
  /** Deliveries asked for by the reads in flight. */
  private reserved = 0;

  constructor(
    private readonly broker: Broker,
    private readonly host: FetchHost,
    log: Logger,
    private readonly capacity: number,
    private readonly blockMs: number,
  ) {
    this.incident = new Incident(log, 'fetching tasks');
    this.batch = Math.max(1, Math.ceil(capacity / 2));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Lets a loop waiting for room look again: at once when it is stopping or there is room for a
   * read; otherwise the wait goes on (a wake per finished task would cost a promise each).
   */
  wake(): void {
    const wake = this.wakeUp;
    if (!wake || (this.running && this.readSize() === 0)) return;
    this.wakeUp = undefined;
    wake();
  }

  /** How many deliveries the next read may ask for now; 0: none may start. */
  private readSize(): number {
    if (this.reads.size >= 2) return 0;
    const held = this.host.heldCount();
    const room = this.capacity - held - this.reserved;
    const idle = held === 0 && this.reserved === 0;
    return room <= 0 || (room < this.batch && !idle) ? 0 : Math.min(room, this.batch);
  }

  private async run(): Promise<void> {
    while (this.running) {
      const count = this.readSize();
      if (count === 0) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      this.reserved += count;
      const read = this.read(count).finally(() => {
        this.reserved -= count;
        this.reads.delete(read);
        this.wake();
      });
      this.reads.add(read);
    }
    await Promise.all(this.reads);
  }

  private async read(count: number): Promise<void> {
    let deliveries: Delivery[];
    try {
      deliveries = await this.broker.fetch(this.host.queues, this.host.name, count, this.blockMs);
      this.incident.ok();
    } catch (err) {
      if (!this.running) return;
      this.incident.fail(err);
      this.host.outage();
      await new Promise((r) => setTimeout(r, READ_RETRY_MS));
      return;
    }
    if (deliveries.length) this.host.deliver(deliveries);
  }

  /** Stops fetching: interrupts the reads in flight and waits for the loop to end. */
  async stop(timeoutMs = 2000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    // Interrupt until no read is left (a second read waits behind the first on one connection).
    // With Redis away an interrupt cannot reach it: after `timeoutMs` the reads are left to end
    // when the broker's connections close.
    const deadline = Date.now() + timeoutMs;
    while (this.reads.size > 0 && Date.now() < deadline) {
      await within(this.broker.interruptFetch(), 200, 'interrupt').catch(() => undefined);
      await Promise.race([Promise.all(this.reads), new Promise((r) => setTimeout(r, 20))]);
    }
    if (this.reads.size === 0) await this.loop;
  }
}
