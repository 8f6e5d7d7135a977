import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldBoard } from '../../src/worker/heartbeat-thread-shared.js';

test('a board written whole reads back its lists per queue, empty queues included', () => {
  const board = HeldBoard.create();
  assert.equal(board.write(HeldBoard.text([['1-0', '1-1'], [], ['3-0']])), true);
  assert.deepEqual(board.read(3), [['1-0', '1-1'], [], ['3-0']]);
});

test('appends add to the lists; a whole write replaces them (what was let go is gone)', () => {
  const board = HeldBoard.create();
  board.write(HeldBoard.text([['1-0'], ['2-0']]));
  assert.equal(board.append(' #1 2-1 2-2 #0 1-1'), true);
  assert.deepEqual(board.read(2), [
    ['1-0', '1-1'],
    ['2-0', '2-1', '2-2'],
  ]);
  board.write(HeldBoard.text([['1-1'], []]));
  assert.deepEqual(board.read(2), [['1-1'], []]);
});

test('an entry appended twice is listed once', () => {
  const board = HeldBoard.create();
  board.write(HeldBoard.text([['1-0']]));
  board.append(' #0 1-0 1-1');
  assert.deepEqual(board.read(1), [['1-0', '1-1']]);
});

test('text that does not fit is refused and the board keeps what it had', () => {
  const board = HeldBoard.create(16);
  board.write(HeldBoard.text([['1-0']]));
  assert.equal(board.append(' #0 1234567890-0'), false);
  assert.equal(board.write(HeldBoard.text([['1234567890-0', '1234567890-1']])), false);
  assert.deepEqual(board.read(1), [['1-0']]);
});

test('the thread side reads the same board through its shared buffer', () => {
  const writer = HeldBoard.create();
  const reader = new HeldBoard(writer.buffer);
  writer.write(HeldBoard.text([['5-0']]));
  writer.append(' #0 5-1');
  assert.deepEqual(reader.read(1), [['5-0', '5-1']]);
});
