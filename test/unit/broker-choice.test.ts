// Pure logic: no servers. Which broker an app picks, and how a delay is spelled on RabbitMQ.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseBroker, describeBroker } from '../../src/broker/choice.js';
import { envelopeOf } from '../../src/broker/rabbitmq-connection.js';
import { DELAY_LEVELS, MAX_HOP_MS, delayRoute, queueName } from '../../src/broker/rabbitmq-topology.js';
import { OptionsError } from '../../src/errors.js';
import { tasuki } from '../../src/index.js';
import { silentLogger } from '../../src/log/logger.js';

test('the broker option: Redis Streams by default, RabbitMQ by URL, anything else a clear error', () => {
  const saved = process.env.TASUKI_BROKER_URL;
  delete process.env.TASUKI_BROKER_URL;
  try {
    assert.equal(tasuki({ logger: silentLogger() }).broker.kind, 'redis');
    assert.equal(tasuki({ broker: 'redis', logger: silentLogger() }).broker.kind, 'redis');
    const app = tasuki({ broker: 'amqps://u:secret@mq.example:5671/prod', logger: silentLogger() });
    assert.equal(app.broker.kind, 'rabbitmq');
    assert.equal(app.broker.queueType, 'quorum');
    assert.equal(app.brokerMintsIds, false);
    assert.doesNotMatch(app.describeBroker(), /secret/);
    assert.throws(
      () => tasuki({ broker: 'kafka://u:secret@k:9092', logger: silentLogger() }),
      (err: unknown) => {
        assert.ok(err instanceof OptionsError);
        assert.match(err.message, /broker/);
        assert.match(err.message, /amqp:\/\//, 'says what would be right');
        assert.doesNotMatch(err.message, /secret/, 'never repeats a password');
        return true;
      },
    );
    assert.throws(
      () => tasuki({ rabbitmq: { queueType: 'stream' as 'quorum' }, logger: silentLogger() }),
      OptionsError,
    );
    process.env.TASUKI_BROKER_URL = 'amqp://guest:guest@127.0.0.1:5679';
    assert.equal(chooseBroker(undefined, 'classic').kind, 'rabbitmq');
    assert.equal(chooseBroker('redis', 'quorum').kind, 'redis', 'the option wins over the environment');
    assert.equal(
      describeBroker(chooseBroker(undefined, 'quorum')),
      'RabbitMQ at amqp://guest:***@127.0.0.1:5679',
    );
  } finally {
    if (saved === undefined) delete process.env.TASUKI_BROKER_URL;
    else process.env.TASUKI_BROKER_URL = saved;
  }
});

test('a delay is spelled in binary, one routing-key word per level, published at its highest 1 bit', () => {
  const q = queueName('tsk', 'emails');
  const r = delayRoute(700, q);
  assert.equal(r.exchange, 'tasuki.delay.9', '700 ms = 0b1010111100: highest bit 9');
  const words = r.routingKey.split('.');
  assert.equal(words.length, DELAY_LEVELS + 1);
  assert.equal(words.at(-1), q);
  assert.equal(words.slice(0, DELAY_LEVELS).join(''), (700).toString(2).padStart(DELAY_LEVELS, '0'));
  // The levels a message waits in add up to its delay.
  const waited = words
    .slice(0, DELAY_LEVELS)
    .reduce((sum, bit, i) => sum + (bit === '1' ? 2 ** (DELAY_LEVELS - 1 - i) : 0), 0);
  assert.equal(waited, 700);
  assert.equal(delayRoute(1, q).exchange, 'tasuki.delay.0');
  assert.equal(delayRoute(0.2, q).exchange, 'tasuki.delay.0', 'at least 1 ms');
  const longest = delayRoute(10 * MAX_HOP_MS, q);
  assert.equal(longest.exchange, `tasuki.delay.${DELAY_LEVELS - 1}`);
  assert.ok(!longest.routingKey.slice(0, 2 * DELAY_LEVELS).includes('0'), 'one pass at most: every level');
  // A queue name with dots stays whole at the end of the key (the deliver exchange binds "#.<name>").
  assert.ok(delayRoute(5, queueName('tsk', 'a.b')).routingKey.endsWith('.tasuki/tsk/a.b'));
});

test('a message is persistent, carries its id and format, and goes to its queue or the delay levels', () => {
  const now = 1_000_000;
  const direct = envelopeOf('tsk', 'emails', '1-pab', '["send",{}]', 0, now);
  assert.equal(direct.exchange, '');
  assert.equal(direct.routingKey, 'tasuki/tsk/emails');
  assert.equal(direct.durable, true);
  assert.equal(direct.messageId, '1-pab');
  assert.equal(direct.type, 'm');
  const delayed = envelopeOf('tsk', 'emails', '1-dab', '{"t":"send","p":{}}', now + 1500, now);
  assert.equal(delayed.exchange, 'tasuki.delay.10');
  assert.equal(delayed.type, 'm2', 'a claim check');
  assert.deepEqual(delayed.headers, { 'x-tasuki-due': now + 1500 });
});
