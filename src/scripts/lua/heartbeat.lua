--[[ heartbeat: reset the idle time of entries this worker holds, so no one reclaims a live task.
KEYS[1] stream     the queue's stream
ARGV[1] group      consumer group
ARGV[2] consumer   this worker
ARGV[3..] entries  entry ids the worker holds
Returns: the entry ids that this worker no longer holds (taken over by another worker, or gone).
]]
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
