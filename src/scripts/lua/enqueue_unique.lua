--[[ enqueue_unique: enqueue a task at most once per idempotency key.
KEYS[1] idempotency  the key's idempotency record
KEYS[2] stream       the queue's stream
KEYS[3] delayed      the queue's delayed set
KEYS[4] parked       the queue's parked messages
ARGV[1] ttl          ms to remember the idempotency key
ARGV[2] message      encoded message
ARGV[3] due          due time in ms; 0 to run now
ARGV[4] id           task id to use when delayed (a stream entry id is used when run now)
Returns: {1, id} when the task was created, {0, id} when the key already named task id.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local existing = redis.call('GET', KEYS[1])
if existing then
  return {0, existing}
end
local id
if ARGV[3] == '0' then
  id = redis.call('XADD', KEYS[2], '*', field_of(ARGV[2]), ARGV[2])
else
  id = ARGV[4]
  redis.call('ZADD', KEYS[3], ARGV[3], id)
  redis.call('HSET', KEYS[4], id, ARGV[2])
end
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return {1, id}
