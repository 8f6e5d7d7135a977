/**
 * A lean pipe for the key audit's per-key commands (TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME,
 * GETRANGE): a connection of its own, opened by ioredis (so URL, TLS, ACL user and database are
 * handled as everywhere else), whose socket the audit then reads and writes directly — one RESP
 * string per batch out, a small parser for the replies in. At a million keys a client library's
 * per-command cost (an object and a promise each) was most of the audit's time; this is what lets
 * it keep up with `redis-cli --memkeys`. Plain commands, so the read-only ACL is unchanged.
 */
import type { Redis } from 'ioredis';

/** A reply: bulk/simple string as bytes, integer, nil, an error, or an array. */
export type RespReply = Buffer | number | null | RespError | RespReply[];

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
      return { value: Buffer.from(line, 'latin1'), next: after };
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

/** Appends one command to `out` in RESP: arguments as ASCII strings or exact bytes. */
export function encodeCommand(out: (string | Buffer)[], args: readonly (string | Buffer)[]): void {
  let head = `*${args.length}\r\n`;
  for (const a of args) {
    if (typeof a === 'string') {
      head += `$${a.length}\r\n${a}\r\n`;
    } else {
      out.push(head + `$${a.length}\r\n`, a);
      head = '\r\n';
    }
  }
  out.push(head);
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

  /** Writes commands (see {@link encodeCommand}) and resolves their `n` replies; calls may overlap. */
  exchange(chunks: readonly (string | Buffer)[], n: number): Promise<RespReply[]> {
    if (this.failed) return Promise.reject(this.failed);
    const done = new Promise<RespReply[]>((resolve, reject) => this.waiters.push({ n, resolve, reject }));
    const stream = this.conn.stream;
    const strings = chunks.every((c) => typeof c === 'string');
    // Every string is ASCII (commands, numbers, ASCII key names): latin1 writes it byte for byte.
    if (strings) stream.write((chunks as string[]).join(''), 'latin1');
    else
      stream.write(Buffer.concat(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'latin1') : c))));
    return done;
  }

  close(): void {
    this.conn.disconnect();
  }
}
