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
 * The entries a worker holds, on a SharedArrayBuffer, as text: entry ids separated by spaces, each
 * list led by `#<i>`, the index of its queue in {@link ThreadData.queues} (`#0 1-0 1-1 #1 2-0`). The
 * worker rewrites it whole now and then ({@link write}, dropping what it let go) and appends what it
 * takes in between ({@link append}: a fetch costs the new ids, not every id held). One writer (the
 * worker), one reader (the thread), a sequence lock between them: the writer makes the sequence odd,
 * writes, makes it even; the reader keeps a copy only if the sequence was even and unchanged around it.
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

  /** The text of entry lists, per queue (in the order of the queues), as {@link write} takes it. */
  static text(lists: readonly (readonly string[])[]): string {
    let text = '';
    for (let i = 0; i < lists.length; i++) {
      const list = lists[i] as readonly string[];
      if (list.length) text += `${text ? ' ' : ''}#${i} ${list.join(' ')}`;
    }
    return text;
  }

  /**
   * Replaces the board's text (worker side). Returns false, writing nothing, when it does not fit:
   * the caller writes it on a larger board and hands that to the reader.
   */
  write(text: string): boolean {
    return this.put(0, text);
  }

  /** Adds text after what is there (worker side); false, writing nothing, when it does not fit. */
  append(text: string): boolean {
    return this.put(Atomics.load(this.header, LENGTH), text);
  }

  private put(at: number, text: string): boolean {
    // Entry ids and queue indexes are ASCII: one byte per character.
    if (at + text.length > this.bytes.length) return false;
    Atomics.add(this.header, SEQ, 1);
    const { written } = encoder.encodeInto(text, this.bytes.subarray(at));
    Atomics.store(this.header, LENGTH, at + written);
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
        if (Atomics.load(this.header, SEQ) === seq) return HeldBoard.parse(decoder.decode(copy), queues);
      }
      // A write is under way (it takes µs): wait for it, at most 1 ms.
      Atomics.wait(this.header, SEQ, seq, 1);
    }
    return undefined;
  }

  /** The lists of a board's text, per queue; an entry appended twice is listed once. */
  static parse(text: string, queues: number): string[][] {
    const sets = Array.from({ length: queues }, () => new Set<string>());
    let current: Set<string> | undefined;
    for (const token of text.split(' ')) {
      if (!token) continue;
      if (token.startsWith('#')) current = sets[Number(token.slice(1))];
      else current?.add(token);
    }
    return sets.map((set) => [...set]);
  }
}
