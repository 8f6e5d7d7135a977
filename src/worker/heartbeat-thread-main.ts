/**
 * The heartbeat thread (started by ./heartbeat-thread.ts): renews a worker's claims from a
 * `node:worker_threads` thread with a Redis connection of its own, so a handler that keeps the
 * worker's event loop busy does not stop its heartbeat. Every interval it renews the entries the
 * worker last wrote on their shared board, and posts back those it found lost.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { RedisConnection } from '../connection/redis.js';
import { RedisStreamsBroker } from '../broker/redis-streams.js';
import { connect } from '../connection/connect.js';
import { tasukiKeys } from '../keys/tasuki-keys.js';
import {
  HeldBoard,
  type FromThread,
  type ThreadData,
  type ThreadError,
  type ToThread,
} from './heartbeat-thread-shared.js';

const port = parentPort;
if (!port) throw new Error('heartbeat-thread-main runs in a worker thread (see heartbeat-thread.ts)');
const data = workerData as ThreadData;

function send(message: FromThread): void {
  port?.postMessage(message);
}

function errorInfo(err: unknown): ThreadError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

let board = new HeldBoard(data.board);
/** Entry ids to renew, per queue (in the order of `data.queues`): the last lists read off the board. */
let lists: string[][] = data.queues.map(() => []);
let redis: RedisConnection | undefined;
let broker: RedisStreamsBroker | undefined;
let timer: NodeJS.Timeout | undefined;
/** The round in progress (rounds never overlap). */
let current: Promise<void> = Promise.resolve();
let failing = false;
let stopping = false;

/** Renews every listed entry; posts the lost ones. Rejects when the broker could not be reached. */
async function renew(): Promise<void> {
  if (!broker) return;
  lists = board.read(data.queues.length) ?? lists;
  const snapshot = lists;
  for (let i = 0; i < data.queues.length; i++) {
    const entries = snapshot[i];
    if (!entries?.length) continue;
    const queue = data.queues[i] as string;
    const lost = await broker.renew(queue, data.consumer, entries);
    if (lost.length) send({ type: 'lost', queue, entries: lost });
  }
}

/** One round, after the previous one; reports failures (every round) and the recovery (once). */
function round(): Promise<ThreadError | undefined> {
  const result = current.then(renew).then(
    () => {
      if (failing) send({ type: 'ok' });
      failing = false;
      return undefined;
    },
    (err: unknown) => {
      failing = true;
      const error = errorInfo(err);
      send({ type: 'failed', error });
      return error;
    },
  );
  current = result.then(() => undefined);
  return result;
}

function schedule(ms: number): void {
  if (stopping) return;
  timer = setTimeout(() => {
    void round().then((error) => schedule(error ? Math.min(1000, data.intervalMs) : data.intervalMs));
  }, ms);
}

async function stop(): Promise<void> {
  stopping = true;
  clearTimeout(timer);
  await current;
  await redis?.quit().catch(() => redis?.disconnect());
  port?.close();
}

port.on('message', (message: ToThread) => {
  switch (message.type) {
    case 'board':
      board = new HeldBoard(message.buffer);
      break;
    case 'renew':
      void round().then((error) => send({ type: 'renewed', id: message.id, ...(error ? { error } : {}) }));
      break;
    case 'stop':
      void stop();
      break;
  }
});

try {
  redis = await connect(data.connection);
} catch (err) {
  send({ type: 'start-failed', error: errorInfo(err) });
  port.close();
}
if (redis) {
  // Only renew() is used: the other settings are never read here.
  broker = new RedisStreamsBroker({
    redis,
    blocking: redis,
    keys: tasukiKeys(data.prefix),
    resultTtlMs: 1,
    deadLetterMaxLen: 1,
    deadLetterRetentionMs: 1,
  });
  if (stopping) {
    await redis.quit().catch(() => undefined);
  } else {
    send({ type: 'ready' });
    schedule(0); // at once: the worker may have been blocked since it wrote its first entries
  }
}
