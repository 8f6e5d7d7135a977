// Shared by the claim-check tests: a real store wrapped to count its calls (a spy over a real
// directory or table, not a mock: every call goes through), and a task whose argument is ~10 KB.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { NewPayload, PayloadStore } from '../../src/index.js';

/** Calls made to a {@link CountingStore}, by method. */
export interface Calls {
  put: number;
  putMany: number;
  get: number;
  delete: number;
  deleted: string[];
}

/**
 * A real store whose calls are counted; `down` makes every call fail as an unreachable store would,
 * `failing` the next that many calls (then it is back by itself, wherever the test is).
 */
export class CountingStore implements PayloadStore {
  readonly calls: Calls = { put: 0, putMany: 0, get: 0, delete: 0, deleted: [] };
  down = false;
  failing = 0;

  constructor(readonly inner: PayloadStore) {}

  get description(): string {
    return this.inner.description;
  }

  private check(): void {
    const failNow = this.failing > 0;
    if (failNow) this.failing--;
    if (this.down || failNow)
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432 (store down in this test)');
  }

  async put(p: NewPayload): Promise<void> {
    this.calls.put++;
    this.check();
    await this.inner.put(p);
  }

  async putMany(p: readonly NewPayload[]): Promise<void> {
    this.calls.putMany++;
    this.check();
    await this.inner.putMany(p);
  }

  async get(ref: string): Promise<Buffer | null> {
    this.calls.get++;
    this.check();
    return this.inner.get(ref);
  }

  async delete(refs: readonly string[]): Promise<number> {
    this.calls.delete++;
    this.check();
    this.calls.deleted.push(...refs);
    return this.inner.delete(refs);
  }

  gc(now?: number): Promise<number> {
    return this.inner.gc(now);
  }

  migrate(): Promise<void> {
    return this.inner.migrate();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temp directory removed after the file's tests. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tasuki-claim-test-'));
  dirs.push(d);
  return d;
}

/** About 10 KB of argument text, different per `seed`. */
export function tenKb(seed: number | string): string {
  return `${seed}:`.padEnd(10 * 1024, 'abcdefghij');
}
