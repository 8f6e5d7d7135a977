import { Redis } from 'ioredis';

/** Parses an `INFO` reply into name → value. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

/** `cmdstat_<name>:calls=..,usec=..` lines as name → { calls, usec }. */
export function parseCommandStats(text: string): Map<string, { calls: number; usec: number }> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const [k, v] of parseInfo(text)) {
    if (!k.startsWith('cmdstat_')) continue;
    const calls = /calls=(\d+)/.exec(v)?.[1];
    const usec = /usec=(\d+)/.exec(v)?.[1];
    out.set(k.slice('cmdstat_'.length), { calls: Number(calls ?? 0), usec: Number(usec ?? 0) });
  }
  return out;
}

/** Commands the bench itself sends (not counted against any system). */
const HARNESS_COMMANDS = new Set(['info', 'config', 'flushall']);

/** The bench's own connection to the throw-away server: stats, flushes. */
export class Stats {
  private constructor(private readonly redis: Redis) {}

  static async open(port: number): Promise<Stats> {
    const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    return new Stats(redis);
  }

  get client(): Redis {
    return this.redis;
  }

  async flush(): Promise<void> {
    await this.redis.flushall('SYNC');
  }

  async resetStats(): Promise<void> {
    await this.redis.config('RESETSTAT');
  }

  async usedMemory(): Promise<number> {
    return Number(parseInfo(await this.redis.info('memory')).get('used_memory'));
  }

  /** Redis CPU (user + sys) so far, in microseconds. */
  async cpuMicros(): Promise<number> {
    const info = parseInfo(await this.redis.info('cpu'));
    return (Number(info.get('used_cpu_user')) + Number(info.get('used_cpu_sys'))) * 1e6;
  }

  /** Calls per command since the last reset, without the bench's own commands. */
  async commandStats(): Promise<Map<string, { calls: number; usec: number }>> {
    const all = parseCommandStats(await this.redis.info('commandstats'));
    for (const k of [...all.keys()]) if (HARNESS_COMMANDS.has(k)) all.delete(k);
    return all;
  }

  /** SLOWLOG entries since the last reset: how many, the slowest, and the slowest few commands. */
  async slowlog(): Promise<{ count: number; maxUs: number; top: string[] }> {
    const entries = (await this.redis.slowlog('GET', 1024)) as [number, number, number, string[]][];
    const own = entries.filter(([, , , args]) => !HARNESS_COMMANDS.has(String(args[0]).toLowerCase()));
    const sorted = own.map(([, , us, args]) => ({ us, cmd: args.slice(0, 3).join(' ').slice(0, 80) }));
    sorted.sort((a, b) => b.us - a.us);
    return {
      count: own.length,
      maxUs: sorted[0]?.us ?? 0,
      top: sorted.slice(0, 5).map((e) => `${e.us} µs ${e.cmd}`),
    };
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
