// The broker conformance suite (./suite.ts) on Redis Streams.
import { useBroker } from '../support/brokers.js';
import { conformance } from './suite.js';

const broker = useBroker('redis');

conformance(broker, async (app, queue, body) => {
  // As a foreign producer would: an entry in the queue's stream, field m, whatever its text.
  await broker.redis().client().xadd(app.keys.stream.key({ queue }), '*', 'm', body);
});
