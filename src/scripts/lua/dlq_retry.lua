--[[ dlq_retry: put dead letters back on their queue as fresh tasks (attempt 1).
KEYS[1] dead     the queue's dead-letter stream
KEYS[2] parked   the queue's parked messages
KEYS[3] control  the queue's control stream (told of a level's first task)
KEYS[4] stream   the queue's stream (level 0)
KEYS[5] level1   the queue's stream of priority level 1
KEYS[6] level2   the queue's stream of priority level 2
KEYS[7] level3   the queue's stream of priority level 3
KEYS[8..] results  the result key of each task, in the order of the tasks in ARGV
ARGV[1..] tasks  three values per task: dead-letter entry id, task id, message (attempt 1)
Returns: the number of dead letters put back.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
-- @include level (lib/level.lua: a message's priority level, and its stream)
local n = #ARGV / 3
local back = 0
for i = 1, n do
  local base = (i - 1) * 3
  if redis.call('XDEL', KEYS[1], ARGV[base + 1]) == 1 then
    local level = level_of(ARGV[base + 3])
    local fresh = redis.call('XADD', KEYS[level_stream(4, level, 3)], '*', field_of(ARGV[base + 3]), ARGV[base + 3])
    if level > 0 then
      fresh = fresh .. 'p' .. level
    end
    redis.call('HSET', KEYS[2], ARGV[base + 2], '=' .. fresh)
    redis.call('DEL', KEYS[7 + i])
    back = back + 1
  end
end
return back
