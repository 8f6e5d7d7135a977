--[[ beat_tick: claim one tick of a schedule and enqueue its task, in one atomic step. A tick is
claimed only when it is later than the last one claimed for the schedule on this queue, and only by a
beat whose lease token is not older than the one that claimed the last tick: so two beats that both
think they lead, or a paused ex-leader that wakes up, cannot enqueue a tick twice.
KEYS[1] tick     the schedule's tick record on its queue (hash: t, f, b, at, id)
KEYS[2] stream   the queue's stream
ARGV[1] tick     the tick time, ms since the epoch (from the schedule, never from a clock)
ARGV[2] fence    fencing token of the beat's lease (decimal string)
ARGV[3] beat     id of the beat, kept in the record (who claimed it)
ARGV[4] ttl      ms to keep the record
ARGV[5] message  encoded message to enqueue; '' to claim the tick without enqueuing (misfire skip)
Returns: {1, entry id} claimed and enqueued; {2, ''} claimed as skipped; {0, last tick} not later
than the last claimed tick (nothing done); {-1, stored fence} a newer lease claimed the last tick
(stale beat, nothing done).
]]
-- @include field_of (lib/field_of.lua: a message's stream field, from its first byte)
local last = redis.call('HMGET', KEYS[1], 't', 'f')
if last[1] and tonumber(ARGV[1]) <= tonumber(last[1]) then
  return {0, last[1]}
end
local stored = last[2]
local fence = ARGV[2]
if stored and (#fence < #stored or (#fence == #stored and fence < stored)) then
  return {-1, stored}
end
local time = redis.call('TIME')
local now = tostring(tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
local id = ''
local reply = 2
if ARGV[5] ~= '' then
  id = redis.call('XADD', KEYS[2], '*', field_of(ARGV[5]), ARGV[5])
  reply = 1
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'f', fence, 'b', ARGV[3], 'at', now, 'id', id)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {reply, id}
