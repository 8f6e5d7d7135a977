--[[ handback: give fetched but unstarted tasks back to the queue so other workers run them at once.
KEYS[1] stream   the stream they came from: the queue's, or one of its priority levels'
KEYS[2] parked   the queue's parked messages
ARGV[1] group    consumer group
ARGV[2] consumer the worker handing them back
ARGV[3] level    the stream's priority level (0: the queue's stream), for the parked pointers
ARGV[4..] tasks  three values per task: entry id, task id, message (carrying the task id)
Returns: the number of tasks handed back.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local n = (#ARGV - 3) / 3
local suffix = ''
if ARGV[3] ~= '0' then
  suffix = 'p' .. ARGV[3]
end
local back = 0
for i = 1, n do
  local base = 3 + (i - 1) * 3
  local entry = ARGV[base + 1]
  -- Only entries this worker still holds: one already finished or reclaimed is left alone.
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    local fresh = redis.call('XADD', KEYS[1], '*', field_of(ARGV[base + 3]), ARGV[base + 3])
    redis.call('HSET', KEYS[2], ARGV[base + 2], '=' .. fresh .. suffix)
    redis.call('XDEL', KEYS[1], entry)
    back = back + 1
  end
end
return back
