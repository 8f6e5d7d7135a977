--[[ purge: delete one batch of a queue's waiting or delayed tasks (tasks a worker holds stay).
KEYS[1] stream    the queue's stream
KEYS[2] delayed   the queue's delayed set
KEYS[3] parked    the queue's parked messages
ARGV[1] group     consumer group
ARGV[2] what      "delayed" (the delayed set) or "waiting" (stream entries no worker holds)
ARGV[3] after     waiting: the last entry id of the previous batch ("-" for the first)
ARGV[4] count     most entries to look at in this call
Returns: {deleted, next}: how many tasks were deleted, and where the next batch starts ("" when done).
]]
-- @include task_of (lib/task_of.lua: a message's task name and attempt)
local count = tonumber(ARGV[4])
if ARGV[2] == 'delayed' then
  local ids = redis.call('ZRANGE', KEYS[2], 0, count - 1)
  if #ids == 0 then
    return {0, ''}
  end
  redis.call('ZREM', KEYS[2], unpack(ids))
  redis.call('HDEL', KEYS[3], unpack(ids))
  return {#ids, 'more'}
end
local start = '-'
if ARGV[3] ~= '-' then
  start = '(' .. ARGV[3]
end
local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', count)
if #entries == 0 then
  return {0, ''}
end
local first = entries[1][1]
local last = entries[#entries][1]
local held = {}
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], first, last, #entries)
if ok then
  for _, p in ipairs(pending) do
    held[p[1]] = true
  end
end
local gone = {}
local unpark = {}
for _, e in ipairs(entries) do
  if not held[e[1]] then
    gone[#gone + 1] = e[1]
    local _, _, id = task_of(e[2][2])
    if id then
      unpark[#unpark + 1] = id
    end
  end
end
if #gone > 0 then
  redis.call('XDEL', KEYS[1], unpack(gone))
end
if #unpark > 0 then
  redis.call('HDEL', KEYS[3], unpack(unpark))
end
if #entries < count then
  return {#gone, ''}
end
return {#gone, last}
