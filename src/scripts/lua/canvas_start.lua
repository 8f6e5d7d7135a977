--[[ canvas_start: enqueue a canvas member at most once, under the task id the canvas gave it. On
Redis Streams the member goes into its queue's stream; on a broker that is not Redis (RabbitMQ) into
its queue's outbox, from which the caller publishes it (and a worker relays it if the caller died).
KEYS[1] member   the member's marker (set once it is enqueued)
KEYS[2] stream   the member's queue stream; with ARGV[4] "1": the member's queue outbox
KEYS[3] parked   the member's queue parked messages (where its task id points to its entry, for
                 lookup; unused with ARGV[4] "1")
ARGV[1] ttl      ms to keep the marker (the app's result TTL)
ARGV[2] message  encoded message (its meta carries the task id and the canvas reference)
ARGV[3] id       the member's task id (local part)
ARGV[4] outbox   "1": write it to the outbox (KEYS[2]) instead of the stream; "" or absent: the stream
Returns: 1 when it was enqueued now into the stream, its outbox entry id when it was written to the
outbox now, 0 when it was already.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[4] == '1' then
  local entry = redis.call('XADD', KEYS[2], '*', '$OUTBOX_ID_FIELD', ARGV[3], '$OUTBOX_MESSAGE_FIELD', ARGV[2])
  redis.call('SET', KEYS[1], entry, 'PX', ARGV[1])
  return entry
end
local entry = redis.call('XADD', KEYS[2], '*', field_of(ARGV[2]), ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], '=' .. entry)
redis.call('SET', KEYS[1], entry, 'PX', ARGV[1])
return 1
