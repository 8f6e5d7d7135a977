#!lua
--[[ enqueue_levels: add tasks with priority levels to one queue, all or none (each to its level's stream).
KEYS[1] stream     the queue's stream (level 0)
KEYS[2] level1     the queue's stream of priority level 1
KEYS[3] level2     the queue's stream of priority level 2
KEYS[4] level3     the queue's stream of priority level 3
KEYS[5] control    the queue's control stream (told of a level's first task)
ARGV[1..] tasks    two values per task: its level (0-3), its encoded message
Returns: each task's entry reference, in order: the entry id on level 0, "<entry id>p<level>" above.
A level's stream is made with the consumer group by its first task (see lib/level.lua).
The shebang makes Redis refuse the whole script (not just a later XADD) when it is at maxmemory.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
-- @include level (lib/level.lua: a message's priority level, and its stream)
local ids = {}
for i = 1, #ARGV / 2 do
  local level = tonumber(ARGV[2 * i - 1])
  local message = ARGV[2 * i]
  local s = level_stream(1, level, 5)
  local entry = redis.call('XADD', KEYS[s], '*', field_of(message), message)
  if level > 0 then
    entry = entry .. 'p' .. level
  end
  ids[i] = entry
end
return ids
