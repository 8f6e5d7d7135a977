/**
 * What the worker and its heartbeat thread share: the messages between them, and the board on which
 * the worker writes the entries it holds. The board is a SharedArrayBuffer, not a message: a post
 * wakes the thread (a system call, tens of µs on a busy machine), which at thousands of tasks per
 * second would slow the worker, while writing the board costs a couple of µs and the thread reads
 * it only when it renews.
 */
import type { ConnectionOptions } from '../connection/connect.js';

/** What the thread is started with (structured-cloned into it; the board is shared). */
export interface ThreadData {
  /** How to reach Redis: the app's URL and connection settings. */
  connection: ConnectionOptions;
  /** The app's key prefix. */
  prefix: string;
  /** The worker's consumer name. */
  consumer: string;
  queues: string[];
  intervalMs: number;
  /** The board's buffer (see {@link HeldBoard}). */
  board: SharedArrayBuffer;
}

/** An error, as it crosses from the thread. */
export interface ThreadError {
  name: string;
  message: string;
  code?: string;
}

/** What the worker tells its heartbeat thread. */
export type ToThread =
  /** The board moved to a larger buffer (already written): read that one from now on. */
  | { type: 'board'; buffer: SharedArrayBuffer }
  /** Renew now, and answer `renewed` with the same id. */
  | { type: 'renew'; id: number }
  /** Finish the round in progress, close the connection and end. */
  | { type: 'stop' };

/** What the heartbeat thread tells the worker. */
export type FromThread =
  | { type: 'ready' }
  /** It could not connect: the worker renews in-process. */
  | { type: 'start-failed'; error: ThreadError }
  /** Entries it found no longer held by this worker. */
  | { type: 'lost'; queue: string; entries: string[] }
  /** A round failed (sent for every failed round). */
  | { type: 'failed'; error: ThreadError }
  /** A round succeeded after failures. */
  | { type: 'ok' }
  | { type: 'renewed'; id: number; error?: ThreadError };

/** Bytes before the text: a sequence number (odd while a write is under way) and the text's length. */
const HEADER = 8;
const SEQ = 0;
const LENGTH = 1;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The entries a worker holds, per queue, on a SharedArrayBuffer: one line per queue (in the order
 * of {@link ThreadData.queues}), entry ids separated by spaces. One writer (the worker), one reader
 * (the thread), a sequence lock between them: the writer makes the sequence odd, writes, makes it
 * even; the reader keeps a copy only if the sequence was even and unchanged around it.
 */
export class HeldBoard {
  private header: Int32Array;
  private bytes: Uint8Array;

  constructor(buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, 2);
    this.bytes = new Uint8Array(buffer, HEADER);
  }

  /** A new board for about `bytes` of text. */
  static create(bytes = 16 * 1024): HeldBoard {
    return new HeldBoard(new SharedArrayBuffer(HEADER + bytes));
  }

  get buffer(): SharedArrayBuffer {
    return this.header.buffer as SharedArrayBuffer;
  }

  /**
   * Writes the lists (worker side). Returns false, writing nothing, when they do not fit: the caller
   * writes them on a larger board and hands that to the reader.
   */
  write(lists: readonly (readonly string[])[]): boolean {
    let text = '';
    for (let i = 0; i < lists.length; i++)
      text += (i ? '\n' : '') + (lists[i] as readonly string[]).join(' ');
    // Entry ids and queue names are ASCII: one byte per character.
    if (text.length > this.bytes.length) return false;
    Atomics.add(this.header, SEQ, 1);
    const { written } = encoder.encodeInto(text, this.bytes);
    Atomics.store(this.header, LENGTH, written);
    Atomics.add(this.header, SEQ, 1);
    return true;
  }

  /**
   * Reads the lists (thread side), for `queues` queues; undefined if no consistent copy could be
   * taken (the writer kept writing), then the reader keeps its previous lists. Blocks at most ~50 ms.
   */
  read(queues: number): string[][] | undefined {
    for (let tries = 0; tries < 50; tries++) {
      const seq = Atomics.load(this.header, SEQ);
      if ((seq & 1) === 0) {
        const copy = this.bytes.slice(0, Atomics.load(this.header, LENGTH));
        if (Atomics.load(this.header, SEQ) === seq) {
          const lines = decoder.decode(copy).split('\n');
          return Array.from({ length: queues }, (_, i) => lines[i]?.split(' ').filter(Boolean) ?? []);
        }
      }
      // A write is under way (it takes µs): wait for it, at most 1 ms.
      Atomics.wait(this.header, SEQ, seq, 1);
    }
    return undefined;
  }
}
