// The broker conformance suite (./suite.ts) on RabbitMQ: one throw-away node for the file.
import { Connection } from 'rabbitmq-client';
import { queueName } from '../../src/broker/rabbitmq-topology.js';
import { useBroker } from '../support/brokers.js';
import { conformance } from './suite.js';

const broker = useBroker('rabbitmq');

conformance(broker, async (app, queue, body) => {
  // As a foreign producer would: a message on the queue with no id and no type.
  const conn = new Connection(broker.brokerUrl());
  try {
    const pub = conn.createPublisher({ confirm: true });
    await pub.send({ routingKey: queueName(app.keys.space.prefix, queue), durable: true }, body);
    await pub.close();
  } finally {
    await conn.close();
  }
});
