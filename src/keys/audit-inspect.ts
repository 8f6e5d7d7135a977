/**
 * How the key audit looks at one SCAN batch: one call of audit_batch.lua (EVALSHA_RO) that returns
 * type, TTL, memory, idle time and — for values that carry metadata — the head of each key; or, where
 * scripts are not allowed (a read-only ACL without EVALSHA_RO, Redis < 7, a Redis Cluster whose
 * batches span slots), one pipeline of TYPE, PTTL, MEMORY USAGE, OBJECT IDLETIME per key and a
 * pipeline of bounded GETRANGEs. The script path exists for speed: at a million keys the
 * per-command cost of a client pipeline, not Redis, was most of the audit's time.
 */
import { isAscii } from 'node:buffer';
import type { Redis } from 'ioredis';
import { TasukiError } from '../errors.js';
import { runReadOnly, type AuditBatchReply } from '../scripts/catalogue.js';
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

/** Replies that mean "scripts are not for this audit": fall back to pipelines. */
const NO_SCRIPTS = /NOPERM|unknown command|CROSSSLOT|ERR.*EVAL|NOSCRIPT|not allowed|BUSY/i;

/** A key of a batch before inspection. */
interface Key {
  name: Buffer;
  text: string;
  arg: string | Buffer;
  def: KeyDef | undefined;
  reader: CreationReader | undefined;
}

/** Type codes of audit_batch.lua. */
const TYPE_NAMES: readonly string[] = ['none', 'string', 'hash', 'list', 'set', 'zset', 'stream'];

/** Inspects batches of keys, by script while it can, else by pipeline. */
export class Inspector {
  /** Why the script path is not used, once it was given up. */
  scriptOff: string | undefined;
  /** Why idle times are unavailable (Redis's error), when they are. */
  idleUnavailable: string | undefined;

  constructor(
    private readonly match: (name: string) => KeyDef | undefined,
    private readonly readers: Readonly<Record<string, CreationReader>> | undefined,
    private readonly signal: AbortSignal | undefined,
    cluster: boolean,
  ) {
    if (cluster) this.scriptOff = 'a Redis Cluster (a SCAN batch spans hash slots, which one script may not)';
  }

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
    if (this.scriptOff === undefined) {
      try {
        return await this.byScript(node, keys);
      } catch (err) {
        if (err instanceof Abort || !(err instanceof Error) || !NO_SCRIPTS.test(err.message)) throw err;
        this.scriptOff = `Redis refused the audit script (${err.message.split('\n')[0] ?? ''})`;
      }
    }
    return this.byPipeline(node, keys);
  }

  private async byScript(node: Redis, keys: Key[]): Promise<Inspected[]> {
    const args = keys.map((k) => k.arg);
    const heads = keys.map((k) => k.reader?.headBytes ?? 0);
    const raw = (await abortable(
      runReadOnly(node, 'audit_batch', args, heads),
      this.signal,
    )) as AuditBatchReply;
    const out: Inspected[] = [];
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as Key;
      const code = raw[i * 5];
      const type = typeof code === 'number' ? (TYPE_NAMES[code] ?? 'none') : String(code);
      const pttl = raw[i * 5 + 1] as number;
      if (type === 'none' || pttl === -2) continue; // gone since SCAN returned it
      const mem = raw[i * 5 + 2] as number;
      const idle = raw[i * 5 + 3] as number;
      const head = raw[i * 5 + 4];
      if (idle < 0) this.idleUnavailable ??= 'OBJECT IDLETIME is not available under an LFU maxmemory-policy';
      out.push({
        name: k.name,
        text: k.text,
        def: k.def,
        reader: k.reader,
        type,
        ttlMs: pttl < 0 ? null : pttl,
        bytes: mem < 0 ? null : mem,
        idle: idle < 0 ? null : idle,
        head: head instanceof Buffer && head.length > 0 && type === 'string' && k.reader ? head : null,
      });
    }
    return out;
  }

  private async byPipeline(node: Redis, keys: Key[]): Promise<Inspected[]> {
    const p = node.pipeline();
    for (const k of keys) {
      p.type(k.arg);
      p.pttl(k.arg);
      p.call('MEMORY', 'USAGE', k.arg);
      p.call('OBJECT', 'IDLETIME', k.arg);
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
