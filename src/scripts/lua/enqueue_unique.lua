--[[ enqueue_unique: enqueue a task at most once per idempotency key.
KEYS[1] idempotency  the key's idempotency record
KEYS[2] stream       the queue's stream
KEYS[3] delayed      the queue's delayed set
KEYS[4] parked       the queue's parked messages
KEYS[5] level1       the queue's stream of priority level 1
KEYS[6] level2       the queue's stream of priority level 2
KEYS[7] level3       the queue's stream of priority level 3
KEYS[8] control      the queue's control stream (told of a level's first task)
ARGV[1] ttl          ms to remember the idempotency key
ARGV[2] message      encoded message
ARGV[3] due          due time in ms; 0 to run now
ARGV[4] id           task id to use when delayed (a stream entry id is used when run now)
ARGV[5] level        priority level (0-3): the stream a task that runs now goes to
Returns: {1, id} when the task was created, {0, id} when the key already named task id. A task run now
on a level above 0 is named by its entry reference "<entry id>p<level>".
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
-- @include level (lib/level.lua: a message's priority level, and its stream)
local existing = redis.call('GET', KEYS[1])
if existing then
  return {0, existing}
end
local id
if ARGV[3] == '0' then
  local level = tonumber(ARGV[5]) or 0
  local s = 2
  if level > 0 then
    s = level_stream(4, level, 8)
  end
  id = redis.call('XADD', KEYS[s], '*', field_of(ARGV[2]), ARGV[2])
  if level > 0 then
    id = id .. 'p' .. level
  end
else
  id = ARGV[4]
  redis.call('ZADD', KEYS[3], ARGV[3], id)
  redis.call('HSET', KEYS[4], id, ARGV[2])
end
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return {1, id}
