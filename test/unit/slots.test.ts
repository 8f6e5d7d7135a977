import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupBySlot, readAcrossSlots, slotOf, SLOT_SLICE_MS } from '../../src/connection/slots.js';

test('slotOf matches CLUSTER KEYSLOT, hash tags included', () => {
  // Values from Redis's own CLUSTER KEYSLOT.
  assert.equal(slotOf('foo'), 12182);
  assert.equal(slotOf('somekey'), 11058);
  assert.equal(slotOf('{foo}bar'), 12182);
  assert.equal(slotOf('tsk:v1:{q:emails}:stream'), slotOf('tsk:v1:{q:emails}:r:1-0'));
  // An empty tag {} does not count: the whole key is hashed.
  assert.equal(slotOf('{}foo'), slotOf('{}foo'));
  assert.notEqual(slotOf('{}foo'), slotOf('foo'));
});

test('groupBySlot keeps keys of one slot together, in first-seen order', () => {
  const keys = ['{a}1', '{b}1', '{a}2', '{c}1', '{b}2'];
  assert.deepEqual(
    groupBySlot(keys, (k) => k),
    [['{a}1', '{a}2'], ['{b}1', '{b}2'], ['{c}1']],
  );
});

test('readAcrossSlots: sweeps from the turn without blocking until full; blocks one slice only when all are empty', async () => {
  const calls: [string, number, number | undefined][] = [];
  const have: Record<string, number> = { a: 0, b: 3, c: 5 };
  const read = (g: string, count: number, block: number | undefined): Promise<string[]> => {
    calls.push([g, count, block]);
    const n = Math.min(count, have[g] as number);
    have[g] = (have[g] as number) - n;
    return Promise.resolve(Array.from({ length: n }, () => g));
  };
  assert.deepEqual(await readAcrossSlots(['a', 'b', 'c'], 1, 4, 2000, read), ['b', 'b', 'b', 'c']);
  assert.deepEqual(calls, [
    ['b', 4, undefined],
    ['c', 1, undefined],
  ]);
  calls.length = 0;
  have.c = 0;
  assert.deepEqual(await readAcrossSlots(['a', 'b', 'c'], 2, 4, 2000, read), []);
  assert.deepEqual(calls, [
    ['c', 4, undefined],
    ['a', 4, undefined],
    ['b', 4, undefined],
    ['c', 4, SLOT_SLICE_MS],
  ]);
});
