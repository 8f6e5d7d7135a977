/**
 * A lean pipe for the key audit's per-key commands (TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME,
 * GETRANGE): a connection of its own, opened by ioredis (so URL, TLS, ACL user and database are
 * handled as everywhere else), whose socket the audit then reads and writes directly — one RESP
 * string per batch out, a small parser for the replies in. At a million keys a client library's
 * per-command cost (an object and a promise each) was most of the audit's time; this is what lets
 * it keep up with `redis-cli --memkeys`. Plain commands, so the read-only ACL is unchanged.
 */
import type { Redis } from 'ioredis';

/** A reply: simple string as text, bulk string as bytes, integer, nil, an error, or an array. */
export type RespReply = string | Buffer | number | null | RespError | RespReply[];

/** An error reply (`-ERR ...`). */
export class RespError {
  constructor(readonly message: string) {}
}

const CRLF = 0x0d;

/** Parses one reply at `pos`; `undefined` when the buffer ends first. */
function parseAt(buf: Buffer, pos: number): { value: RespReply; next: number } | undefined {
  if (pos >= buf.length) return undefined;
  const end = buf.indexOf(CRLF, pos);
  if (end < 0 || end + 1 >= buf.length) return undefined;
  const kind = buf[pos];
  const line = buf.toString('latin1', pos + 1, end);
  const after = end + 2;
  switch (kind) {
    case 0x3a: // ':'
      return { value: Number(line), next: after };
    case 0x2b: // '+'
      return { value: line, next: after };
    case 0x2d: // '-'
      return { value: new RespError(line), next: after };
    case 0x24: {
      // '$'
      const n = Number(line);
      if (n < 0) return { value: null, next: after };
      if (after + n + 2 > buf.length) return undefined;
      return { value: buf.subarray(after, after + n), next: after + n + 2 };
    }
    case 0x2a: {
      // '*'
      const n = Number(line);
      if (n < 0) return { value: null, next: after };
      const items: RespReply[] = [];
      let p = after;
      for (let i = 0; i < n; i++) {
        const r = parseAt(buf, p);
        if (!r) return undefined;
        items.push(r.value);
        p = r.next;
      }
      return { value: items, next: p };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(String.fromCharCode(kind ?? 0))}`);
  }
}

/**
 * Writes commands into one buffer, each a fixed head (command words, already in RESP) followed by
 * the key and, for some, more arguments: no string is built per key, and key names go as the exact
 * bytes SCAN returned.
 */
export class CommandBuffer {
  private buf: Buffer;
  private off = 0;

  constructor(estimate: number) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, estimate));
  }

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
  }

  /** Appends raw RESP bytes (a command head from {@link commandHead}). */
  raw(bytes: Buffer): this {
    this.room(bytes.length);
    this.off += bytes.copy(this.buf, this.off);
    return this;
  }

  /** Appends one bulk string argument: `$<len>\r\n<bytes>\r\n`. */
  arg(bytes: Buffer | string): this {
    const len = typeof bytes === 'string' ? bytes.length : bytes.length;
    this.room(len + 16);
    this.off += this.buf.write(`$${len}\r\n`, this.off, 'latin1');
    this.off +=
      typeof bytes === 'string' ? this.buf.write(bytes, this.off, 'latin1') : bytes.copy(this.buf, this.off);
    this.buf[this.off++] = 13;
    this.buf[this.off++] = 10;
    return this;
  }

  /** The commands written so far. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

/** The RESP head of a command with `argc` arguments in all, of which `words` come first. */
export function commandHead(argc: number, ...words: string[]): Buffer {
  return Buffer.from(`*${argc}\r\n` + words.map((w) => `$${w.length}\r\n${w}\r\n`).join(''), 'latin1');
}

/** Replies in order for commands written in order, on a socket taken over from ioredis. */
export class RespPipe {
  private pending: Buffer = Buffer.alloc(0);
  private readonly replies: RespReply[] = [];
  private readonly waiters: { n: number; resolve: (r: RespReply[]) => void; reject: (e: Error) => void }[] =
    [];
  private failed: Error | undefined;

  private constructor(private readonly conn: Redis) {
    const stream = conn.stream;
    stream.removeAllListeners('data');
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('close', () => this.fail(new Error('the connection closed')));
    stream.on('error', (e: Error) => this.fail(e));
  }

  /** A pipe on a new connection like `node` (same URL, credentials, database). */
  static async open(node: Redis): Promise<RespPipe> {
    const conn = node.duplicate({
      lazyConnect: true,
      enableReadyCheck: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: () => null,
      connectionName: 'tasuki-keys-audit-pipe',
    });
    conn.on('error', () => undefined);
    try {
      await conn.connect();
      await conn.type('tasuki:audit:probe'); // ioredis has read every reply it was waiting for
    } catch (err) {
      conn.disconnect();
      throw err;
    }
    return new RespPipe(conn);
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const w of this.waiters.splice(0)) w.reject(this.failed);
  }

  private onData(chunk: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    try {
      for (;;) {
        const r = parseAt(buf, pos);
        if (!r) break;
        this.replies.push(r.value);
        pos = r.next;
      }
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.pending = pos < buf.length ? buf.subarray(pos) : Buffer.alloc(0);
    for (let w = this.waiters[0]; w && this.replies.length >= w.n; w = this.waiters[0]) {
      this.waiters.shift();
      w.resolve(this.replies.splice(0, w.n));
    }
  }

  /** Writes commands (a {@link CommandBuffer}'s bytes) and resolves their `n` replies; calls may overlap. */
  exchange(commands: Buffer, n: number): Promise<RespReply[]> {
    if (this.failed) return Promise.reject(this.failed);
    const done = new Promise<RespReply[]>((resolve, reject) => this.waiters.push({ n, resolve, reject }));
    this.conn.stream.write(commands);
    return done;
  }

  close(): void {
    this.conn.disconnect();
  }
}
