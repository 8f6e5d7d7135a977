--[[ ticket_put: write the tickets of tasks published to RabbitMQ, or put back on it (a hand-back),
so that revoke, cancel, purge and lookup find them while they wait there (see docs/brokers.md).
KEYS[1] delayed   the queue's delayed set (a delayed task is named in it with its due time)
KEYS[2] purges    the queue's purge generation (each ticket is stamped with it)
KEYS[3..] tickets one ticket per task, in the order of the tasks in ARGV
ARGV[1] ttl       ms a ticket is kept past its due time
ARGV[2] now       ms (to tell a delayed task from one due now, and to trim the delayed set)
ARGV[3..] tasks   three values per task: task id, task name ("" keeps the name the ticket has), due
                  (ms; 0: at once)
Returns: how many tickets were written. A ticket a revoke or cancel has marked (revoked, cancelled,
cancelling) is left as it is: the task stays revoked.
]]
local ttl = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local gen = redis.call('GET', KEYS[2]) or '0'
local written = 0
local delayed = false
for i = 1, (#ARGV - 2) / 3 do
  local base = 2 + (i - 1) * 3
  local id = ARGV[base + 1]
  local name = ARGV[base + 2]
  local due = tonumber(ARGV[base + 3])
  local s = redis.call('HGET', KEYS[2 + i], 's')
  if not s or s == 'queued' or s == 'delayed' or s == 'active' then
    local state = 'queued'
    local wait = 0
    if due > now then
      state = 'delayed'
      wait = due - now
      delayed = true
      redis.call('ZADD', KEYS[1], ARGV[base + 3], id)
    elseif s == 'delayed' then
      redis.call('ZREM', KEYS[1], id)
    end
    redis.call('HSET', KEYS[2 + i], 's', state, 'd', ARGV[base + 3], 'g', gen)
    if name ~= '' then
      redis.call('HSET', KEYS[2 + i], 'n', name)
    end
    if s == 'active' then
      redis.call('HDEL', KEYS[2 + i], 'w')
    end
    redis.call('PEXPIRE', KEYS[2 + i], ttl + wait)
    written = written + 1
  end
end
if delayed then
  -- Members whose ticket expired long ago (their message was lost outside tasuki) do not pile up.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - ttl))
end
return written
