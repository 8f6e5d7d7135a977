--[[ reclaim: take over tasks a dead worker held longer than the idle time.
KEYS[1] stream     the queue's stream
ARGV[1] group      consumer group
ARGV[2] consumer   the worker taking them over
ARGV[3] idle       ms an entry must have been idle (its holder sent no heartbeat)
ARGV[4] count      most entries to take
Returns: {{entry id, fields, deliveries}, ...}: the entries taken, each with its delivery count.
]]
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, e in ipairs(claimed[2]) do
  if e and e[1] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    local deliveries = 1
    if p[1] then
      deliveries = p[1][4]
    end
    out[#out + 1] = {e[1], e[2], deliveries}
  end
end
return out
