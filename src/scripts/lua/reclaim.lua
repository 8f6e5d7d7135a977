--[[ reclaim: take over tasks a dead worker held longer than the idle time.
KEYS[1] stream     the queue's stream
KEYS[2] moves      the queue's moves mark, raised to the newest entry taken (lib/moved.lua)
ARGV[1] group      consumer group
ARGV[2] consumer   the worker taking them over
ARGV[3] idle       ms an entry must have been idle (its holder sent no heartbeat)
ARGV[4] count      most entries to take
Returns: {{entry id, fields, deliveries}, ...}: the entries taken, each with its delivery count.
]]
-- @include moved (lib/moved.lua: the moves mark)
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
local newest = 0
for _, e in ipairs(claimed[2]) do
  if e and e[1] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    local deliveries = 1
    if p[1] then
      deliveries = p[1][4]
    end
    out[#out + 1] = {e[1], e[2], deliveries}
    newest = math.max(newest, entry_ms(e[1]))
  end
end
-- Entries deleted while pending leave their holder's pending list too.
for _, id in ipairs(claimed[3] or {}) do
  newest = math.max(newest, entry_ms(id))
end
if newest > 0 then
  moved(KEYS[2], newest)
end
return out
