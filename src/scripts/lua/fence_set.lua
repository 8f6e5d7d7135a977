--[[ fence_set: write a value only if its fencing token is strictly newer than the one stored with it.
KEYS[1] value  a hash holding the value (field v) and the token of its last write (field fence)
ARGV[1] token  fencing token of the writer (decimal string)
ARGV[2] value  the value to store
ARGV[3] ttl    ms the key lives after this write; 0 to leave its TTL as it is
Returns: {1, token} when written; {0, stored token} when the stored token is >= ARGV[1] (stale writer,
nothing done). Tokens are compared as decimal strings (length, then digits), so no precision is lost.
]]
local current = redis.call('HGET', KEYS[1], 'fence')
local token = ARGV[1]
if current then
  local newer = #token > #current or (#token == #current and token > current)
  if not newer then
    return {0, current}
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'fence', token)
if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, token}
