// Chords under a SIGKILLed worker process on Redis Streams (./chords-under-kill.ts).
import { newApp, useRedis } from '../support/redis.js';
import { chordsUnderKill } from './chords-under-kill.js';

const server = useRedis();

chordsUnderKill({
  name: 'redis',
  redisUrl: () => server().url,
  redis: () => server().client(),
  env: () => ({}),
  app: (options) => newApp(server(), options),
});
