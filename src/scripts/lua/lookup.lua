--[[ lookup: where a task is now.
KEYS[1] result   the task's result key
KEYS[2] parked   the queue's parked messages
KEYS[3] delayed  the queue's delayed set
KEYS[4] stream   the queue's stream (level 0)
KEYS[5] level1   the queue's stream of priority level 1
KEYS[6] level2   the queue's stream of priority level 2
KEYS[7] level3   the queue's stream of priority level 3
KEYS[8] tickets  the queue's tickets (RabbitMQ broker; absent on Redis Streams)
KEYS[9] purges   the queue's purge generation (RabbitMQ broker)
ARGV[1] id       task id
ARGV[2] group    consumer group
Returns: {"record", json} | {"delayed", due ms} | {"queued", entry} | {"active", entry, consumer, deliveries} | {"unknown"}
The entry is an entry reference: "<entry id>" on level 0, "<entry id>p<level>" on a level's stream.
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local record = redis.call('GET', KEYS[1])
if record then
  return {'record', record}
end
-- A task waiting on RabbitMQ, or running from it: its ticket (tickets exist only there).
local t = ticket_of(redis.call('HGET', KEYS[8], ARGV[1]))
if t and (t.s == 'queued' or t.s == 'delayed') then
  if t.g < tonumber(redis.call('GET', KEYS[9]) or '0') then
    return {'unknown'}
  end
  if t.s == 'delayed' then
    return {'delayed', t.d}
  end
  return {'queued', ARGV[1]}
elseif t and (t.s == 'active' or t.s == 'cancelling') then
  return {'active', ARGV[1], t.w, '1'}
end
local entry
local parked = redis.call('HGET', KEYS[2], ARGV[1])
if parked then
  if string.sub(parked, 1, 1) ~= '=' then
    local due = redis.call('ZSCORE', KEYS[3], ARGV[1])
    return {'delayed', due or '0'}
  end
  entry = string.sub(parked, 2)
elseif string.match(ARGV[1], '^%d+%-%d+$') or string.match(ARGV[1], '^%d+%-%d+p%d$') then
  entry = ARGV[1]
else
  return {'unknown'}
end
local ref = entry
local s = 4
local id, level = string.match(entry, '^(%d+%-%d+)p(%d)$')
if id then
  entry = id
  s = 4 + tonumber(level)
  if s < 5 or s > 7 then
    return {'unknown'}
  end
end
local found = redis.call('XRANGE', KEYS[s], entry, entry)
if #found == 0 then
  return {'unknown'}
end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[s], ARGV[2], entry, entry, 1)
if ok and pending[1] then
  return {'active', ref, pending[1][2], pending[1][4]}
end
return {'queued', ref}
