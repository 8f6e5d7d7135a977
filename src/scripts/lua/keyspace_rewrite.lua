--[[ keyspace_rewrite: replace an app keyspace value with its migrated form, only if it is unchanged.
KEYS[1] value     the key holding the value
ARGV[1] expected  the value as it was read (exact bytes)
ARGV[2] value     the value re-encoded at the current format version
ARGV[3] ttl       ms the key lives if it has no TTL at all (0: leave it without one)
Returns: 1 when rewritten (the key's remaining TTL kept); 0 when the value changed or the key went
since it was read (nothing done: the newer write wins).
]]
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if ARGV[3] ~= '0' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
