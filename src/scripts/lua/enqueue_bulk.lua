#!lua
--[[ enqueue_bulk: add many messages to one queue's stream, all or none.
KEYS[1] stream     the queue's stream
ARGV[1..] messages  one encoded message per task
Returns: the stream entry ids, in the order of the messages.
The shebang makes Redis refuse the whole script (not just a later XADD) when it is at maxmemory.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local ids = {}
for i = 1, #ARGV do
  ids[i] = redis.call('XADD', KEYS[1], '*', field_of(ARGV[i]), ARGV[i])
end
return ids
