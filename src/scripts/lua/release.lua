--[[ release: leave entries this worker cannot run for another worker, at once and uncounted.
KEYS[1] stream     the queue's stream
ARGV[1] group      consumer group
ARGV[2] consumer   the worker releasing them
ARGV[3] idle       ms of idle time to give them, so any reclaimer may take them at once
ARGV[4..] entries  two values per entry: entry id, delivery count to keep (its deliveries less this one)
Returns: the number of entries released (those this worker still held).
]]
local released = 0
for i = 4, #ARGV, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'RETRYCOUNT', ARGV[i + 1], 'JUSTID')
    released = released + 1
  end
end
return released
