// The incident of the brief (Redis out of memory under 10 KB task arguments), replayed small on a
// real redis-server with maxmemory 64 MB and noeviction: bench/incident.ts runs the same replay at
// full size and prints the figures docs/memory.md quotes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replayIncident } from '../../bench/incident.js';

test('with the claim check: 3,000 tasks of 10 KB, at most 300 B of Redis each, no OOM, every task completes', async () => {
  const r = await replayIncident({ claimCheck: true, tasks: 3000 });
  assert.deepEqual(r.otherErrors, []);
  assert.equal(r.accepted, 3000);
  assert.equal(r.refusedMemoryFull, 0);
  assert.equal(r.completed, 3000);
  assert.equal(r.leftInStream, 0);
  assert.equal(r.redisRefusedWrites, 0);
  assert.ok(r.growthPerTask <= 300, `Redis grew ${r.growthPerTask} B per task`);
  assert.ok(r.peakFraction < 0.5, `peak ${r.peakFraction} of maxmemory`);
});

test('without it: the memory guard refuses with E_MEMORY_FULL before Redis is full; every accepted task completes', async () => {
  const r = await replayIncident({ claimCheck: false, tasks: 20_000 });
  assert.deepEqual(r.otherErrors, [], 'every refusal is the typed E_MEMORY_FULL');
  assert.ok(r.refusedMemoryFull > 0, 'the producer was refused');
  assert.ok(r.accepted > 1000 && r.accepted < 20_000, `accepted ${r.accepted}`);
  assert.equal(r.redisRefusedWrites, 0, 'Redis itself never refused a write (the guard came first)');
  assert.ok(r.peakFraction < 1, `peak ${r.peakFraction} of maxmemory`);
  // Nothing half-written: what was accepted ran, once each, and nothing is left behind.
  assert.equal(r.completed, r.accepted);
  assert.equal(r.leftInStream, 0);
});
