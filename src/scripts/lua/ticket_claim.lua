--[[ ticket_claim: a worker claims the tasks of a batch it fetched from RabbitMQ: each ticket then
says active on this worker (so a revoke or cancel knows the task runs, and where). A task revoked,
cancelled or purged before this moment is not to be run: the verdict says so.
KEYS[1] delayed   the queue's delayed set
KEYS[2] purges    the queue's purge generation
KEYS[3] events    the queue's completion events
KEYS[4] tickets   the queue's tickets
KEYS[5..] results one result key per task, in the order of the ids in ARGV
ARGV[1] worker    this worker's name
ARGV[2] ttl       ms to keep a record written here
ARGV[3] maxlen    approximate cap of the events stream
ARGV[4] now       ms
ARGV[5..] ids     one task id per task
Returns: one verdict per task, in order: "" run it (also for a task with no ticket: a message from
another producer); "revoked" / "cancelled": revoked or cancelled before (its record is written), do
not run it; "purged": published before the queue's last purge, do not run it (no record). A task
cancelled while it ran on a worker that died since ("cancelling") is recorded cancelled here and
gets "cancelled".
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local worker = ARGV[1]
local now = tonumber(ARGV[4])
local ids = {}
for i = 5, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
local vals = chunked('HMGET', KEYS[4], ids, 1000)
local gen
local set = {}
local gone = {}
local zrem = {}
local out = {}
for i, id in ipairs(ids) do
  local t = ticket_of(vals[i])
  local verdict = ''
  if not t then
    verdict = ''
  elseif t.s == 'queued' or t.s == 'delayed' or t.s == 'active' then
    if t.s == 'delayed' then
      zrem[#zrem + 1] = id
    end
    if t.s ~= 'active' then
      gen = gen or tonumber(redis.call('GET', KEYS[2]) or '0')
    end
    if t.s ~= 'active' and t.g < gen then
      verdict = 'purged'
      gone[#gone + 1] = id
    else
      -- Delivered now, or again (its worker died, or handed it back): this worker's.
      t.s = 'active'
      t.w = worker
      set[#set + 1] = id
      set[#set + 1] = ticket_value(t)
    end
  elseif t.s == 'revoked' or t.s == 'cancelled' then
    verdict = t.s
    gone[#gone + 1] = id
  elseif t.s == 'cancelling' then
    verdict = 'cancelled'
    gone[#gone + 1] = id
    local ok, c = pcall(cjson.decode, t.rest)
    if not ok or type(c) ~= 'table' then
      c = {}
    end
    local okx, err = pcall(cjson.decode, c.x or '')
    if not okx then
      err = { name = 'CancelledError', code = 'E_CANCELLED', message = 'cancelled' }
    end
    local record = cjson.encode({
      state = 'cancelled', task = t.n, attempt = t.a, worker = t.w, startedAt = now, finishedAt = now,
      by = c.b or '', error = err
    })
    redis.call('SET', KEYS[4 + i], record, 'PX', ARGV[2])
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', '$EVENT_IDS_FIELD', id, '$EVENT_RECORDS_FIELD', record)
  end
  out[i] = verdict
end
if #set > 0 then
  chunked('HSET', KEYS[4], set, 1000)
end
if #gone > 0 then
  chunked('HDEL', KEYS[4], gone, 1000)
end
if #zrem > 0 then
  chunked('ZREM', KEYS[1], zrem, 1000)
end
return out
