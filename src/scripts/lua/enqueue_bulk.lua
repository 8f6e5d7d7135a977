#!lua
--[[ enqueue_bulk: add many messages to one queue's stream, all or none.
KEYS[1] stream     the queue's stream
ARGV[1..] messages  one encoded message per task
Returns: the stream entry ids, in the order of the messages.
The shebang makes Redis refuse the whole script (not just a later XADD) when it is at maxmemory.
]]
-- A message's field: a claim-checked message (format 2, field $CLAIM_MESSAGE_FIELD) starts with '{',
-- a format 1 message (field $MESSAGE_FIELD) with '['.
local function field_of(message)
  if string.byte(message, 1) == 123 then
    return '$CLAIM_MESSAGE_FIELD'
  end
  return '$MESSAGE_FIELD'
end
local ids = {}
for i = 1, #ARGV do
  ids[i] = redis.call('XADD', KEYS[1], '*', field_of(ARGV[i]), ARGV[i])
end
return ids
