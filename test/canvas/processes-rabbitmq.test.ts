// Chords under a SIGKILLed worker process on RabbitMQ (./chords-under-kill.ts): the continuations
// and callbacks go through the queues' outboxes; a worker killed between a publish and the outbox
// delete leaves a copy that runs once all the same.
import { useBroker } from '../support/brokers.js';
import { chordsUnderKill } from './chords-under-kill.js';

const broker = useBroker('rabbitmq');

chordsUnderKill({
  name: 'rabbitmq',
  redisUrl: () => broker.redis().url,
  redis: () => broker.redis().client(),
  env: () => broker.env(),
  app: (options) => broker.app(options),
});
