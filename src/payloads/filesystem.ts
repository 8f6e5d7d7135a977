/**
 * A payload store in a directory: one file per payload, named by its ref, written to a temp file and
 * renamed into place (a reader sees the whole payload or none). The expiry is the file's mtime, so
 * `gc()` needs nothing but the directory. For one host (and `tasuki dev`); several hosts share
 * payloads through PostgreSQL (postgres.ts) or a shared mount with atomic rename.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkRef } from './refs.js';
import type { NewPayload, PayloadStore } from './store.js';

/** Options of {@link FileSystemPayloadStore}. */
export interface FileSystemPayloadStoreOptions {
  /**
   * fsync each payload before it counts as written (default `false`: the page cache is enough for a
   * process crash, not for a power loss; turn it on where the host itself may go down).
   */
  fsync?: boolean;
}

/** Temp files start with this; never a ref (refs have no dot). */
const TEMP = '.tmp-';
/** A temp file older than this was left by a crashed write; gc deletes it. */
const STALE_TEMP_MS = 3_600_000;

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** Payloads as files in one directory (created on first use). */
export class FileSystemPayloadStore implements PayloadStore {
  /** Absolute path of the directory. */
  readonly dir: string;
  readonly description: string;
  private readonly fsync: boolean;
  private made: Promise<void> | undefined;

  constructor(dir: string, options: FileSystemPayloadStoreOptions = {}) {
    this.dir = resolve(dir);
    this.description = `filesystem ${this.dir}`;
    this.fsync = options.fsync ?? false;
  }

  /** Creates the directory (idempotent). */
  migrate(): Promise<void> {
    this.made ??= mkdir(this.dir, { recursive: true }).then(
      () => undefined,
      (err: unknown) => {
        this.made = undefined;
        throw err;
      },
    );
    return this.made;
  }

  async put(payload: NewPayload): Promise<void> {
    checkRef(payload.ref);
    await this.migrate();
    const file = join(this.dir, payload.ref);
    const temp = join(this.dir, `${TEMP}${payload.ref}-${randomBytes(4).toString('hex')}`);
    try {
      if (this.fsync) {
        const handle = await open(temp, 'wx');
        try {
          await handle.writeFile(payload.data);
          await handle.datasync();
        } finally {
          await handle.close();
        }
      } else {
        await writeFile(temp, payload.data, { flag: 'wx' });
      }
      const expires = new Date(payload.expiresAt);
      await utimes(temp, expires, expires);
      await rename(temp, file);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  async putMany(payloads: readonly NewPayload[]): Promise<void> {
    for (const p of payloads) checkRef(p.ref);
    await this.migrate();
    const written: string[] = [];
    try {
      // A few at a time: enough to overlap the disk, not so many that a big batch runs out of fds.
      for (let i = 0; i < payloads.length; i += 32) {
        await Promise.all(
          payloads.slice(i, i + 32).map(async (p) => {
            await this.put(p);
            written.push(p.ref);
          }),
        );
      }
    } catch (err) {
      // All or none: a half-written batch is deleted again.
      await this.delete(written).catch(() => undefined);
      throw err;
    }
  }

  async get(ref: string): Promise<Buffer | null> {
    checkRef(ref);
    try {
      return await readFile(join(this.dir, ref));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async delete(refs: readonly string[]): Promise<number> {
    for (const ref of refs) checkRef(ref);
    let deleted = 0;
    await Promise.all(
      refs.map(async (ref) => {
        try {
          await unlink(join(this.dir, ref));
          deleted++;
        } catch (err) {
          if (!isMissing(err)) throw err;
        }
      }),
    );
    return deleted;
  }

  async gc(now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
    let deleted = 0;
    for (let i = 0; i < names.length; i += 64) {
      await Promise.all(
        names.slice(i, i + 64).map(async (name) => {
          const file = join(this.dir, name);
          try {
            const s = await stat(file);
            if (!s.isFile()) return;
            const expired = name.startsWith(TEMP) ? s.ctimeMs < now - STALE_TEMP_MS : s.mtimeMs <= now;
            if (!expired) return;
            await unlink(file);
            if (!name.startsWith(TEMP)) deleted++;
          } catch (err) {
            if (!isMissing(err)) throw err;
          }
        }),
      );
    }
    return deleted;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
