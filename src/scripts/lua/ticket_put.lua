--[[ ticket_put: write the tickets of tasks published to RabbitMQ, or put back on it (a hand-back),
so that revoke, cancel, purge and lookup find them while they wait there (see docs/brokers.md).
KEYS[1] delayed   the queue's delayed set (a delayed task is named in it with its due time)
KEYS[2] purges    the queue's purge generation (each ticket is stamped with it)
KEYS[3] tickets   the queue's tickets
ARGV[1] now       ms (to tell a delayed task from one due now)
ARGV[2] stale     ms: delayed members due before this are forgotten (their messages were lost)
ARGV[3..] tasks   three values per task: task id, task name ("" keeps the name the ticket has), due
                  (ms; 0: at once)
Returns: how many tickets were written. A ticket a revoke or cancel has marked (revoked, cancelled,
cancelling) is left as it is: the task stays revoked.
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local now = tonumber(ARGV[1])
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = (#ARGV - 2) / 3
local ids = {}
for i = 1, n do
  ids[i] = ARGV[3 + (i - 1) * 3]
end
local old = chunked('HMGET', KEYS[3], ids, 1000)
local set = {}
local zadd = {}
local zrem = {}
for i = 1, n do
  local base = 2 + (i - 1) * 3
  local id = ARGV[base + 1]
  local name = ARGV[base + 2]
  local due = ARGV[base + 3]
  local t = ticket_of(old[i])
  if not t or t.s == 'queued' or t.s == 'delayed' or t.s == 'active' then
    local state = 'queued'
    if tonumber(due) > now then
      state = 'delayed'
      zadd[#zadd + 1] = due
      zadd[#zadd + 1] = id
    elseif t and t.s == 'delayed' then
      zrem[#zrem + 1] = id
    end
    if name == '' then
      name = t and t.n or '?'
    end
    set[#set + 1] = id
    set[#set + 1] = ticket_value({ s = state, g = gen, d = due, a = t and t.a or 1, w = '', n = name })
  end
end
if #set > 0 then
  chunked('HSET', KEYS[3], set, 1000)
end
if #zadd > 0 then
  chunked('ZADD', KEYS[1], zadd, 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
end
if #zrem > 0 then
  chunked('ZREM', KEYS[1], zrem, 1000)
end
return #set / 2
