--[[ beat_tick: claim one tick of a schedule and enqueue its task, in one atomic step. A tick is
claimed only when it is later than the last one claimed for the schedule on this queue, and only by a
beat whose lease token is not older than the newest one seen on this queue (announced by each new
active beat, and kept by every claim): so two beats that both think they lead cannot enqueue a tick
twice, and a paused ex-leader that wakes up after a newer beat announced itself enqueues nothing.
KEYS[1] tick     the schedule's tick record on its queue (hash: t, f, b, at, id)
KEYS[2] stream   the queue's stream; with ARGV[6] set: the queue's outbox (a broker that is not Redis)
KEYS[3] fence    the queue's newest beat lease token (hash: fence, v), as fence_set.lua writes it
ARGV[1] tick     the tick time, ms since the epoch (from the schedule, never from a clock)
ARGV[2] fence    fencing token of the beat's lease (decimal string)
ARGV[3] beat     id of the beat, kept in the record (who claimed it)
ARGV[4] ttl      ms to keep the record (and the queue's fence, when this claim raises it)
ARGV[5] message  encoded message to enqueue; '' to claim the tick without enqueuing (misfire skip)
ARGV[6] outbox   '' or absent: enqueue into the stream (the entry id is the task id); else the task's
                 id (local part, also in the message): write it to the outbox, from which the beat
                 publishes it to the broker (and any worker relays it if the beat died first)
Returns: {1, entry id} claimed and enqueued; {1, task id, outbox entry id} claimed and written to the
outbox; {2, ''} claimed as skipped; {0, last tick} not later than the last claimed tick (nothing
done); {-1, newer fence} a newer lease announced itself on this queue or claimed the last tick (stale
beat, nothing done). Tokens compare as decimal strings.
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local last = redis.call('HMGET', KEYS[1], 't', 'f')
if last[1] and tonumber(ARGV[1]) <= tonumber(last[1]) then
  return {0, last[1]}
end
local fence = ARGV[2]
local function older(a, b)
  return b and (#a < #b or (#a == #b and a < b))
end
local newest = redis.call('HGET', KEYS[3], 'fence')
if older(fence, newest) then
  return {-1, newest}
end
if older(fence, last[2]) then
  return {-1, last[2]}
end
local time = redis.call('TIME')
local now = tostring(tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
local id = ''
local reply = 2
local outboxed = nil
if ARGV[5] ~= '' and ARGV[6] ~= '' then
  id = ARGV[6]
  outboxed = redis.call('XADD', KEYS[2], '*', '$OUTBOX_ID_FIELD', id, '$OUTBOX_MESSAGE_FIELD', ARGV[5])
  reply = 1
elseif ARGV[5] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', field_of(ARGV[5]), ARGV[5])
  reply = 1
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'f', fence, 'b', ARGV[3], 'at', now, 'id', id)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if fence ~= newest then
  redis.call('HSET', KEYS[3], 'fence', fence, 'v', ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
if outboxed then
  return {reply, id, outboxed}
end
return {reply, id}
