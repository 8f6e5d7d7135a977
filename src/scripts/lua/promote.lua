--[[ promote: move due delayed tasks into the stream (of their priority level).
KEYS[1] delayed  the queue's delayed set
KEYS[2] parked   the queue's parked messages
KEYS[3] stream   the queue's stream (level 0)
KEYS[4] level1   the queue's stream of priority level 1
KEYS[5] level2   the queue's stream of priority level 2
KEYS[6] level3   the queue's stream of priority level 3
KEYS[7] control  the queue's control stream (told of a level's first task)
ARGV[1] now      current time in ms
ARGV[2] limit    most tasks to move in one call
Returns: {moved, next} where next is the due time (ms) of the earliest task left, or -1.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
-- @include level (lib/level.lua: a message's priority level, and its stream)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(due) do
  -- ZREM first: at maxmemory Redis lets a script's later writes through once it has written, and
  -- promotion only moves a message from the parked hash to the stream.
  redis.call('ZREM', KEYS[1], id)
  local message = redis.call('HGET', KEYS[2], id)
  if message and string.sub(message, 1, 1) ~= '=' then
    -- Back on its priority level's stream (meta "l"); the parked field says where: "=<entry>" on
    -- level 0, "=<entry>p<level>" above.
    local level = level_of(message)
    local entry = redis.call('XADD', KEYS[level_stream(3, level, 7)], '*', field_of(message), message)
    if level > 0 then
      entry = entry .. 'p' .. level
    end
    redis.call('HSET', KEYS[2], id, '=' .. entry)
    moved = moved + 1
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then
  return {moved, tonumber(first[2])}
end
return {moved, -1}
