--[[ dlq_retry: put dead letters back on their queue as fresh tasks (attempt 1).
KEYS[1] dead     the queue's dead-letter stream
KEYS[2] stream   the queue's stream
KEYS[3] parked   the queue's parked messages
KEYS[4..] results  the result key of each task, in the order of the tasks in ARGV
ARGV[1..] tasks  three values per task: dead-letter entry id, task id, message (attempt 1)
Returns: the number of dead letters put back.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local n = #ARGV / 3
local back = 0
for i = 1, n do
  local base = (i - 1) * 3
  if redis.call('XDEL', KEYS[1], ARGV[base + 1]) == 1 then
    local fresh = redis.call('XADD', KEYS[2], '*', field_of(ARGV[base + 3]), ARGV[base + 3])
    redis.call('HSET', KEYS[3], ARGV[base + 2], '=' .. fresh)
    redis.call('DEL', KEYS[3 + i])
    back = back + 1
  end
end
return back
