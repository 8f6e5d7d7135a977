import { z } from 'zod';
import { createCache, defineKeyspace, defineSequence, tasuki } from 'tasuki';

const app = tasuki({ prefix: 'shop' });

// Declared once: owner, format version, TTL on every write, codec, schema. Listed by
// `tasuki keys catalogue --app`, checked by `tasuki keys audit --app`.
const profiles = defineKeyspace(app, {
  owner: 'accounts',
  name: 'user.profile', // keys: shop:v1:user.profile:<id>
  version: 2,
  ttl: '1h',
  codec: 'msgpack',
  schema: z.object({ name: z.string(), plan: z.enum(['free', 'pro']) }),
  // A v1 value ({ name }) is migrated on read and rewritten in place.
  migrations: { 1: (v1) => ({ ...(v1 as { name: string }), plan: 'free' }) },
});

// One computation per key across processes when many miss at once.
const profile = await profiles.getOrSet('42', () => ({ name: 'Ada', plan: 'pro' as const }));
console.log(profile.plan);

// Django-style cache, its fenced lock, and a bounded throttle.
const cache = createCache(app, { owner: 'web', ttl: '5m' });
await cache.set('page:/pricing', '<h1>Pricing</h1>');
const lock = await cache.lock('rebuild-index', { ttl: '30s' });
const { allowed } = await cache.throttle('api', '100/m').hit('203.0.113.7');

// Ids that keep rising across a Redis restart or failover.
const orders = defineSequence(app, { owner: 'shop', name: 'order' });
const [first, second] = await orders.next(2);
console.log(lock.name, allowed, first, second);
await app.close();
