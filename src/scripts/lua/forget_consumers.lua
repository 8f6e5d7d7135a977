--[[ forget_consumers: remove consumers that hold nothing and have been idle long enough.
KEYS[1] stream     the queue's stream
ARGV[1] group      consumer group
ARGV[2] idle       ms a consumer must have been idle
ARGV[3] only       a consumer name to consider alone (a worker removing itself at stop), or ""
Returns: the names of the consumers removed.
Checked and removed in one step: a consumer that reads entries between a check and a removal would
lose its claims (XGROUP DELCONSUMER drops its pending entries), so neither happens apart.
]]
local removed = {}
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  return removed
end
local idle = tonumber(ARGV[2])
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do
    info[c[i]] = c[i + 1]
  end
  if (ARGV[3] == '' or info['name'] == ARGV[3]) and info['pending'] == 0 and info['idle'] >= idle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed[#removed + 1] = info['name']
  end
end
return removed
