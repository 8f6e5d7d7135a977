--[[ purge_tickets: the Redis half of a purge on RabbitMQ (the broker purges its queue itself): every
task published to the queue until now that no worker has taken is purged, wherever its message is
(a delay level, the queue, or pushed to a worker that has not taken it): the purge generation is
raised, and a ticket stamped with an older one is dropped by the worker that fetches its message
(ticket_claim.lua), unknown to lookup and revoke.
KEYS[1] delayed   the queue's delayed set
KEYS[2] purges    the queue's purge generation
ARGV[1] oldest    ms: delayed members due before this are stale (their ticket expired) and not counted
Returns: how many delayed tasks (retries waiting for their time included) were purged.
]]
local n = redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf')
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
return n
