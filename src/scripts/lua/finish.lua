--[[ finish: record finished tasks of one queue; ack and delete their entries in one step.
KEYS[1] stream      the queue's stream
KEYS[2] events      the queue's completion events
KEYS[3] parked      the queue's parked messages
KEYS[4..] results   one result key per task, in the order of the tasks in ARGV
ARGV[1] group       consumer group
ARGV[2] ttl         ms to keep each result
ARGV[3] maxlen      approximate cap of the events stream
ARGV[4..] tasks     four values per task: entry id, task id, record, parked flag ("1" when task id is not the entry id)
Returns: the number of entries acknowledged.
]]
local entries = {}
local ids = {}
local parked = {}
local n = (#ARGV - 3) / 4
for i = 1, n do
  local base = 3 + (i - 1) * 4
  entries[i] = ARGV[base + 1]
  ids[i] = ARGV[base + 2]
  redis.call('SET', KEYS[3 + i], ARGV[base + 3], 'PX', ARGV[2])
  if ARGV[base + 4] == '1' then
    parked[#parked + 1] = ARGV[base + 2]
  end
end
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
redis.call('XDEL', KEYS[1], unpack(entries))
if #parked > 0 then
  redis.call('HDEL', KEYS[3], unpack(parked))
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'f', table.concat(ids, ' '))
return acked
