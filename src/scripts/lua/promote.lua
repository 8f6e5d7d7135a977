--[[ promote: move due delayed tasks into the stream.
KEYS[1] delayed  the queue's delayed set
KEYS[2] parked   the queue's parked messages
KEYS[3] stream   the queue's stream
ARGV[1] now      current time in ms
ARGV[2] limit    most tasks to move in one call
Returns: {moved, next} where next is the due time (ms) of the earliest task left, or -1.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  -- ZREM first: at maxmemory Redis lets a script's later writes through once it has written, and
  -- promotion only moves a message from the parked hash to the stream.
  redis.call('ZREM', KEYS[1], id)
  local message = redis.call('HGET', KEYS[2], id)
  if message and string.sub(message, 1, 1) ~= '=' then
    local entry = redis.call('XADD', KEYS[3], '*', field_of(message), message)
    redis.call('HSET', KEYS[2], id, '=' .. entry)
    moved = moved + 1
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then
  return {moved, tonumber(first[2])}
end
return {moved, -1}
