/**
 * Faults of a Redis Cluster during a run, on a local 3 + 3 cluster: a live migration of the busy
 * queue's slot (MOVED/ASK, TRYAGAIN for scripts while its keys are split), a manual failover
 * (CLUSTER FAILOVER) and a master SIGKILLed so its replica takes over. Every task acknowledged at
 * enqueue completes; a task runs twice only if it was in flight; the counts are printed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { tasuki, Worker, type Tasuki } from '../../src/index.js';
import { slotOf } from '../../src/connection/slots.js';
import { silentLogger } from '../../src/log/logger.js';
import { TestCluster, type ClusterNodeInfo } from '../../src/testing/index.js';
import { randomPrefix, until } from '../support/redis.js';

let tc: TestCluster;
before(async () => {
  tc = await TestCluster.start({ nodeTimeoutMs: 1000 });
});
after(() => tc?.close());

const TASKS = 1200;
const CONCURRENCY = 16;

function servedBy(nodes: ClusterNodeInfo[], slot: number): ClusterNodeInfo | undefined {
  return nodes.find(
    (n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
  );
}

function ownerOf(nodes: ClusterNodeInfo[], slot: number): ClusterNodeInfo {
  const m = servedBy(nodes, slot);
  if (!m) throw new Error(`no master serves slot ${slot}`);
  return m;
}

/** Moves `slot` to another master key by key, a few keys at a time, while the run goes on. */
async function migrate(slot: number): Promise<string> {
  const nodes = await tc.cluster.topology();
  const src = ownerOf(nodes, slot);
  const dst = nodes.find((n) => n.role === 'master' && !n.failed && n.id !== src.id) as ClusterNodeInfo;
  const s = tc.direct(src.port);
  const d = tc.direct(dst.port);
  await d.cluster('SETSLOT', slot, 'IMPORTING', src.id);
  await s.cluster('SETSLOT', slot, 'MIGRATING', dst.id);
  let moved = 0;
  for (;;) {
    const keys = await s.cluster('GETKEYSINSLOT', slot, 20);
    if (keys.length === 0) break;
    await s.migrate('127.0.0.1', dst.port, '', 0, 5000, 'KEYS', ...keys);
    moved += keys.length;
    await new Promise((r) => setTimeout(r, 5)); // let the run meet the split slot (ASK, TRYAGAIN)
  }
  for (const n of nodes.filter((x) => x.role === 'master' && !x.failed)) {
    const c = n.port === src.port ? s : n.port === dst.port ? d : tc.direct(n.port);
    await c.cluster('SETSLOT', slot, 'NODE', dst.id);
  }
  return `slot ${slot} migrated from :${src.port} to :${dst.port} (${moved} keys)`;
}

/** Promotes the replica of the slot's master with CLUSTER FAILOVER (no data lost). */
async function failover(slot: number): Promise<string> {
  const nodes = await tc.cluster.topology();
  const master = ownerOf(nodes, slot);
  const replica = nodes.find((n) => n.masterId === master.id && !n.failed) as ClusterNodeInfo;
  await tc.direct(replica.port).cluster('FAILOVER');
  await until(
    async () => servedBy(await tc.cluster.topology(), slot)?.id === replica.id,
    30_000,
    'the failover',
  );
  return `CLUSTER FAILOVER: :${replica.port} took over from :${master.port}`;
}

/** SIGKILLs the slot's master; its replica takes over after the node timeout; the old one rejoins. */
async function killMaster(slot: number): Promise<string> {
  const master = ownerOf(await tc.cluster.topology(), slot);
  const node = tc.cluster.node(master.port);
  await node.stop({ kill: true });
  await until(
    async () => (servedBy(await tc.cluster.topology(), slot)?.port ?? master.port) !== master.port,
    30_000,
    'a replica to take over',
  );
  await node.start(); // rejoins as a replica of the new master
  await tc.cluster.waitUntilHealthy();
  return `SIGKILL of master :${master.port}; its replica took over, the old master rejoined as replica`;
}

/**
 * Runs TASKS tasks through a worker while `fault` happens after a third was enqueued; resolves the
 * counts. Enqueues wait for one replica (enqueueReplicas: 1): that is what "acknowledged" means
 * when a primary may be SIGKILLed right after answering.
 */
async function run(fault: (slot: number) => Promise<string>): Promise<void> {
  const app: Tasuki = tasuki({
    redis: tc.url,
    prefix: randomPrefix(),
    queues: ['busy'],
    enqueueReplicas: 1,
    enqueueReplicaTimeout: '3s',
    logger: silentLogger(),
  });
  const runs = new Map<number, number>();
  const work = app.task({
    name: 'work',
    queue: 'busy',
    schema: z.object({ i: z.number() }),
    handler: async ({ i }) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 2));
      return i;
    },
  });
  const worker = new Worker(app, { concurrency: CONCURRENCY, claimIdle: '3s', logger: silentLogger() });
  await worker.start();
  const slot = slotOf(app.keys.stream.key({ queue: 'busy' }));
  const acked: number[] = [];
  let refused = 0;
  const reasons = new Map<string, number>();
  let faultDone: Promise<string> | undefined;
  for (let i = 0; i < TASKS; i += 20) {
    if (i >= TASKS / 3 && !faultDone) faultDone = fault(slot);
    await Promise.all(
      Array.from({ length: 20 }, (_, j) =>
        work.enqueue({ i: i + j }).then(
          () => acked.push(i + j),
          (err: Error) => {
            refused++;
            const why = `${(err as { code?: string }).code ?? err.name}: ${err.message.slice(0, 120)}`;
            reasons.set(why, (reasons.get(why) ?? 0) + 1);
          },
        ),
      ),
    );
  }
  const what = await (faultDone as Promise<string>);
  await until(() => acked.every((i) => runs.has(i)), 120_000, 'every acknowledged task to run');
  await worker.stop();
  await app.close();
  const duplicates = [...runs.values()].filter((n) => n > 1).length;
  const lost = acked.filter((i) => !runs.has(i)).length;
  process.stdout.write(
    `# ${what}: enqueued ${TASKS}, acknowledged ${acked.length}, refused ${refused}, ran ${runs.size}, ` +
      `lost ${lost}, ran twice ${duplicates}\n`,
  );
  for (const [why, n] of reasons) process.stdout.write(`#   refused ${n}× ${why}\n`);
  assert.equal(lost, 0);
  // A task runs again only if it was in flight when its record could not be written: at most what
  // the worker held (concurrency + prefetch).
  assert.ok(duplicates <= CONCURRENCY + Math.max(CONCURRENCY, 16), `${duplicates} tasks ran twice`);
}

test('a live slot migration of the busy queue loses no acknowledged task', { timeout: 300_000 }, () =>
  run(migrate),
);

test('a manual failover (CLUSTER FAILOVER) loses no acknowledged task', { timeout: 300_000 }, () =>
  run(failover),
);

test('a SIGKILLed master (its replica takes over) loses no acknowledged task', { timeout: 300_000 }, () =>
  run(killMaster),
);
