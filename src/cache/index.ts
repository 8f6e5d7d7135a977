/** The Django-style cache facade and throttling counters (see docs/keyspaces.md). */
export { Cache, createCache, type CacheOptions } from './cache.js';
export { Throttle, type ThrottleDecision } from './throttle.js';
