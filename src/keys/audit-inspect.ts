/**
 * How the key audit looks at one SCAN batch: TYPE, PTTL, MEMORY USAGE and either a bounded GETRANGE
 * (values that carry who wrote them and when) or OBJECT IDLETIME per key — read-only commands, in
 * one write on the audit's lean pipe (src/keys/audit-wire.ts) on a standalone Redis, or in ioredis
 * pipelines on each master of a Redis Cluster (or when a second connection cannot be opened).
 */
import { isAscii } from 'node:buffer';
import type { Redis } from 'ioredis';
import { TasukiError } from '../errors.js';
import { CommandBuffer, commandHead, RespError, type RespPipe, type RespReply } from './audit-wire.js';
import { creationReader, type CreationReader } from './creation.js';
import type { KeyDef } from './registry.js';

/** What the audit learnt about one key. */
export interface Inspected {
  name: Buffer;
  /** The name as text (UTF-8). */
  text: string;
  def: KeyDef | undefined;
  type: string;
  ttlMs: number | null;
  bytes: number | null;
  /** OBJECT IDLETIME in seconds, when Redis tracks it. */
  idle: number | null;
  /** The reader of its creation metadata, and the head of its value it reads. */
  reader: CreationReader | undefined;
  head: Buffer | null;
}

/** The audit was cancelled. */
export class Abort extends Error {}

/** `p`, or a rejection with {@link Abort} as soon as `signal` fires. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new Abort());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Abort());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** A failed command as the audit's `E_REDIS` error. */
export function redisFailure(what: string, err: Error): TasukiError {
  if (err.name !== 'ReplyError') {
    // Not an answer from Redis: the connection went away (or never came back).
    return new TasukiError(
      'E_REDIS',
      `key audit: lost the connection to Redis during ${what} (${err.message}). Check that Redis is reachable, then run it again.`,
      { cause: err },
    );
  }
  const perm = /NOPERM/.test(err.message)
    ? ' The audit needs these read-only commands: SCAN, TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME, GETRANGE (DBSIZE optional; EVALSHA_RO and EVAL_RO make it faster).'
    : '';
  return new TasukiError('E_REDIS', `key audit: ${what} failed: Redis said "${err.message}".${perm}`, {
    cause: err,
  });
}

function reply<T>(r: [Error | null, unknown] | undefined, what: string): T {
  if (!r) throw new TasukiError('E_REDIS', `key audit: ${what} got no reply`);
  if (r[0]) throw redisFailure(what, r[0]);
  return r[1] as T;
}

/** An error reply as the Error {@link redisFailure} words: named ReplyError, as ioredis's are. */
function replyError(e: RespError): Error {
  const err = new Error(e.message);
  err.name = 'ReplyError';
  return err;
}

const TYPE = commandHead(2, 'TYPE');
const PTTL = commandHead(2, 'PTTL');
const MEMORY_USAGE = commandHead(3, 'MEMORY', 'USAGE');
const OBJECT_IDLETIME = commandHead(3, 'OBJECT', 'IDLETIME');
const GETRANGE = commandHead(4, 'GETRANGE');

/** A key of a batch before inspection. */
interface Key {
  name: Buffer;
  text: string;
  arg: string | Buffer;
  def: KeyDef | undefined;
  reader: CreationReader | undefined;
}

/** Inspects batches of keys, by script while it can, else by pipeline. */
export class Inspector {
  /** Why idle times are unavailable (Redis's error), when they are. */
  idleUnavailable: string | undefined;

  /** The lean pipe of a standalone Redis (src/keys/audit-wire.ts), when it could be opened. */
  pipe: RespPipe | undefined;

  constructor(
    private readonly match: (name: string) => KeyDef | undefined,
    private readonly readers: Readonly<Record<string, CreationReader>> | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** The keys of a batch that still exist, inspected, in SCAN order. */
  async inspect(node: Redis, names: readonly Buffer[]): Promise<Inspected[]> {
    const keys: Key[] = names.map((name) => {
      // An ASCII name goes to Redis as a plain string (the client writes the command as one string,
      // much cheaper than a buffer per key); any other name as its exact bytes.
      const ascii = isAscii(name);
      const text = name.toString(ascii ? 'latin1' : 'utf8');
      const def = this.match(text);
      return {
        name,
        text,
        arg: ascii ? text : name,
        def,
        reader: def ? creationReader(def, this.readers) : undefined,
      };
    });
    return this.pipe ? this.byPipe(this.pipe, keys) : this.byPipeline(node, keys);
  }

  /** TYPE, PTTL, MEMORY USAGE and GETRANGE (values with metadata) or OBJECT IDLETIME per key. */
  private async byPipe(pipe: RespPipe, keys: Key[]): Promise<Inspected[]> {
    let size = 0;
    for (const k of keys) size += 4 * k.name.length + 200;
    const out0 = new CommandBuffer(size);
    for (const k of keys) {
      out0.raw(TYPE).arg(k.name);
      out0.raw(PTTL).arg(k.name);
      out0.raw(MEMORY_USAGE).arg(k.name);
      if (k.reader)
        out0
          .raw(GETRANGE)
          .arg(k.name)
          .arg('0')
          .arg(String(k.reader.headBytes - 1));
      else out0.raw(OBJECT_IDLETIME).arg(k.name);
    }
    const raw = await abortable(pipe.exchange(out0.bytes(), keys.length * 4), this.signal);
    const out: Inspected[] = [];
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as Key;
      const t = raw[i * 4];
      if (t instanceof RespError) throw redisFailure('TYPE', replyError(t));
      const type = typeof t === 'string' ? t : 'none';
      const pttl = raw[i * 4 + 1];
      if (pttl instanceof RespError) throw redisFailure('PTTL', replyError(pttl));
      if (type === 'none' || pttl === -2) continue; // gone since SCAN returned it
      const mem = raw[i * 4 + 2];
      if (mem instanceof RespError) throw redisFailure('MEMORY USAGE', replyError(mem));
      const last: RespReply | undefined = raw[i * 4 + 3];
      let idle: number | null = null;
      let head: Buffer | null = null;
      if (k.reader) {
        // A GETRANGE of a key that is not a string is refused (WRONGTYPE): it has no head then.
        if (last instanceof Buffer && last.length > 0 && type === 'string') head = last;
      } else if (last instanceof RespError) {
        this.idleUnavailable ??= last.message;
      } else if (typeof last === 'number') {
        idle = last;
      }
      out.push({
        name: k.name,
        text: k.text,
        def: k.def,
        reader: k.reader,
        type,
        ttlMs: typeof pttl === 'number' && pttl >= 0 ? pttl : null,
        bytes: typeof mem === 'number' ? mem : null,
        idle,
        head,
      });
    }
    return out;
  }

  private async byPipeline(node: Redis, keys: Key[]): Promise<Inspected[]> {
    const p = node.pipeline();
    for (const k of keys) {
      p.type(k.arg);
      p.pttl(k.arg);
      p.memory('USAGE', k.arg);
      p.object('IDLETIME', k.arg);
    }
    const res = (await abortable(p.exec(), this.signal)) ?? [];
    const out: Inspected[] = [];
    keys.forEach((k, i) => {
      const type = reply<string>(res[i * 4], 'TYPE');
      const pttl = reply<number>(res[i * 4 + 1], 'PTTL');
      if (type === 'none' || pttl === -2) return; // gone since SCAN returned it
      const bytes = reply<number | null>(res[i * 4 + 2], 'MEMORY USAGE');
      const idleReply = res[i * 4 + 3];
      let idle: number | null = null;
      if (idleReply?.[0]) this.idleUnavailable ??= idleReply[0].message;
      else if (typeof idleReply?.[1] === 'number') idle = idleReply[1];
      out.push({
        name: k.name,
        text: k.text,
        def: k.def,
        reader: k.reader,
        type,
        ttlMs: pttl < 0 ? null : pttl,
        bytes,
        idle,
        head: null,
      });
    });
    const reads = out.filter((k) => k.reader && k.type === 'string');
    if (reads.length) {
      const q = node.pipeline();
      for (const k of reads) q.getrangeBuffer(k.name, 0, (k.reader as CreationReader).headBytes - 1);
      const heads = (await abortable(q.exec(), this.signal)) ?? [];
      reads.forEach((k, j) => {
        k.head = reply<Buffer | null>(heads[j], 'GETRANGE');
      });
    }
    return out;
  }
}
