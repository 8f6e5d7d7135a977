--[[ lookup: where a task is now.
KEYS[1] result   the task's result key
KEYS[2] parked   the queue's parked messages
KEYS[3] delayed  the queue's delayed set
KEYS[4] stream   the queue's stream
KEYS[5] tickets  the queue's tickets (RabbitMQ broker; absent on Redis Streams)
KEYS[6] purges   the queue's purge generation (RabbitMQ broker)
ARGV[1] id       task id
ARGV[2] group    consumer group
Returns: {"record", json} | {"delayed", due ms} | {"queued", entry} | {"active", entry, consumer, deliveries} | {"unknown"}
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local record = redis.call('GET', KEYS[1])
if record then
  return {'record', record}
end
-- A task waiting on RabbitMQ, or running from it: its ticket (tickets exist only there).
local t = ticket_of(redis.call('HGET', KEYS[5], ARGV[1]))
if t and (t.s == 'queued' or t.s == 'delayed') then
  if t.g < tonumber(redis.call('GET', KEYS[6]) or '0') then
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
elseif string.match(ARGV[1], '^%d+%-%d+$') then
  entry = ARGV[1]
else
  return {'unknown'}
end
local found = redis.call('XRANGE', KEYS[4], entry, entry)
if #found == 0 then
  return {'unknown'}
end
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[4], ARGV[2], entry, entry, 1)
if ok and pending[1] then
  return {'active', entry, pending[1][2], pending[1][4]}
end
return {'queued', entry}
