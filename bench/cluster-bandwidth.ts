/**
 * The bandwidth part of `npm run bench:cluster`: N messages of 1 KB to S subscribers through classic
 * PUBLISH, SPUBLISH and a tasuki channel, on a local cluster, counting what each node sent.
 *
 * What a node sent: `wchar` of its redis-server process (/proc/<pid>/io: every byte written to a
 * socket, persistence being off), which includes the cluster bus; `total_net_output_bytes` (INFO
 * stats) counts client and replication traffic only, so the difference is the cluster bus.
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { slotOf } from '../src/connection/slots.js';
import { tasuki } from '../src/index.js';
import { silentLogger } from '../src/log/logger.js';
import type { TestCluster } from '../src/testing/index.js';

export type Mode = 'PUBLISH' | 'SPUBLISH' | 'tasuki channel';
export const MODES: readonly Mode[] = ['PUBLISH', 'SPUBLISH', 'tasuki channel'];

/** Bytes one mode cost the cluster, per message published. */
export interface BandwidthRow {
  mode: Mode;
  masters: number;
  nodes: number;
  messages: number;
  subscribers: number;
  /** Everything all nodes wrote, per message. */
  totalPerMessage: number;
  /** What the busiest node wrote, per message. */
  maxNodePerMessage: number;
  /** Cluster bus bytes (all nodes), per message. */
  busPerMessage: number;
  /** Cluster bus publish and shard-publish messages sent (CLUSTER INFO), all nodes. */
  busPublishes: number;
}

interface Sample {
  wchar: number;
  net: number;
  publishes: number;
}

function wchar(pid: number): number {
  return Number(/^wchar: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
}

async function sample(tc: TestCluster): Promise<Sample[]> {
  return Promise.all(
    tc.cluster.nodes.map(async (n) => {
      const c = tc.direct(n.port);
      const info = await c.info('stats');
      const cinfo = await c.cluster('INFO');
      const s = {
        wchar: wchar(n.pid as number),
        net: Number(/total_net_output_bytes:(\d+)/.exec(info)?.[1] ?? 0),
        publishes:
          Number(/cluster_stats_messages_publish_sent:(\d+)/.exec(cinfo)?.[1] ?? 0) +
          Number(/cluster_stats_messages_publishshard_sent:(\d+)/.exec(cinfo)?.[1] ?? 0),
      };
      c.disconnect();
      return s;
    }),
  );
}

async function until(check: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs one mode on the cluster and measures it. */
export async function measure(
  tc: TestCluster,
  mode: Mode,
  masters: number,
  messages: number,
  subscribers: number,
): Promise<BandwidthRow> {
  const payload = 'x'.repeat(1024);
  const channel = `bench-${mode.replace(/\W/g, '')}`;
  const topo = await tc.cluster.topology();
  const owner = topo.find(
    (n) => n.role === 'master' && n.slots.some(([a, b]) => slotOf(channel) >= a && slotOf(channel) <= b),
  );
  if (!owner) throw new Error(`no master serves ${channel}`);
  const conns: Redis[] = [];
  let received = 0;
  let publish: (i: number) => Promise<unknown>;
  let close = (): Promise<void> => Promise.resolve();
  if (mode === 'tasuki channel') {
    const app = tasuki({ redis: tc.url, logger: silentLogger(), prefix: 'bench' });
    const ch = app.channel({ name: channel, schema: z.string(), maxLen: messages });
    const subs = Array.from({ length: subscribers }, () => ch.subscribe(() => void received++));
    await until(() => subs.every((s) => s.lastId !== '$'), 'subscribers to start');
    publish = (i) => ch.publish(`${i}:${payload}`);
    close = async () => {
      await Promise.all(subs.map((s) => s.close()));
      await app.close();
    };
  } else {
    // Subscribers spread over every node, as clients of a real cluster are; SSUBSCRIBE must go to
    // a node of the channel's shard (its master here).
    const nodes = tc.cluster.nodes;
    for (let i = 0; i < subscribers; i++) {
      const port = mode === 'PUBLISH' ? (nodes[i % nodes.length]?.port as number) : owner.port;
      const c = new Redis(port, '127.0.0.1');
      c.on('message', () => void received++);
      c.on('smessage', () => void received++);
      if (mode === 'PUBLISH') await c.subscribe(channel);
      else await c.ssubscribe(channel);
      conns.push(c);
    }
    const pub = new Redis(owner.port, '127.0.0.1');
    conns.push(pub);
    publish = (i) => pub.call(mode, channel, `${i}:${payload}`);
  }
  const before = await sample(tc);
  for (let i = 0; i < messages; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, messages - i) }, (_, j) => publish(i + j)));
  }
  await until(() => received >= messages * subscribers, `${messages * subscribers} deliveries`);
  const afterSample = await sample(tc);
  await close();
  for (const c of conns) c.disconnect();
  const d = afterSample.map((a, i) => ({
    wchar: a.wchar - (before[i]?.wchar ?? 0),
    net: a.net - (before[i]?.net ?? 0),
    publishes: a.publishes - (before[i]?.publishes ?? 0),
  }));
  const total = d.reduce((s, x) => s + x.wchar, 0);
  return {
    mode,
    masters,
    nodes: d.length,
    messages,
    subscribers,
    totalPerMessage: Math.round(total / messages),
    maxNodePerMessage: Math.round(Math.max(...d.map((x) => x.wchar)) / messages),
    busPerMessage: Math.round(d.reduce((s, x) => s + Math.max(0, x.wchar - x.net), 0) / messages),
    busPublishes: d.reduce((s, x) => s + x.publishes, 0),
  };
}
