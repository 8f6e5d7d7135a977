--[[ lock_acquire: take a lock if it is free and, only then, issue its next fencing token.
KEYS[1] lock   the lock's owner key
KEYS[2] fence  the lock name's fencing-token counter
ARGV[1] owner  random owner token of this acquisition
ARGV[2] ttl    lock TTL in ms (> 0)
Returns: {1, token} when acquired (token: decimal string, strictly greater than every token issued
before for this name); {0, pttl} when the lock is held by someone else (pttl: ms it still lives).
The token is max(INCR fence, server time in microseconds): if the counter is lost (deleted, Redis
restarted without persistence, failover to a replica that missed the last increment) the clock floor
keeps new tokens above the old ones. No shebang on purpose: the OOM check then applies per command,
so SET is refused at maxmemory before anything is written.
]]
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not ok then
  return {0, redis.call('PTTL', KEYS[1])}
end
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local token = redis.call('INCR', KEYS[2])
if token < floor then
  token = floor
  -- string.format: a Lua number passed to redis.call is printed with 14 digits and would be rounded.
  redis.call('SET', KEYS[2], string.format('%d', token))
end
return {1, string.format('%d', token)}
