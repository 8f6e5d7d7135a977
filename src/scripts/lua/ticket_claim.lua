--[[ ticket_claim: a worker claims the tasks of a batch it fetched from RabbitMQ: each ticket then
says active on this worker (so a revoke or cancel knows the task runs, and where). A task revoked,
cancelled or purged before this moment is not to be run: the verdict says so.
KEYS[1] delayed   the queue's delayed set
KEYS[2] purges    the queue's purge generation
KEYS[3] events    the queue's completion events
KEYS[4..] tasks   two keys per task, in the order of the ids in ARGV: its ticket, its result key
ARGV[1] worker    this worker's name
ARGV[2] ttl       ms to keep a record written here
ARGV[3] maxlen    approximate cap of the events stream
ARGV[4] now       ms
ARGV[5..] ids     one task id per task
Returns: one verdict per task, in order: "" run it (also for a task with no ticket: a message from
another producer, or one whose ticket expired); "revoked" / "cancelled": revoked or cancelled before
(its record is written), do not run it; "purged": published before the queue's last purge, do not
run it (no record). A task cancelled while it ran on a worker that died since ("cancelling") is
recorded cancelled here and gets "cancelled".
]]
local worker = ARGV[1]
local now = tonumber(ARGV[4])
local gen
local out = {}
for i = 1, #ARGV - 4 do
  local id = ARGV[4 + i]
  local t = redis.call('HMGET', KEYS[2 + 2 * i], 's', 'g')
  local s = t[1]
  local verdict = ''
  if s == 'queued' or s == 'delayed' then
    gen = gen or tonumber(redis.call('GET', KEYS[2]) or '0')
    if tonumber(t[2] or '0') < gen then
      verdict = 'purged'
      redis.call('DEL', KEYS[2 + 2 * i])
    else
      redis.call('HSET', KEYS[2 + 2 * i], 's', 'active', 'w', worker)
    end
    if s == 'delayed' then
      redis.call('ZREM', KEYS[1], id)
    end
  elseif s == 'active' then
    -- Delivered again (its worker died, or handed it back): now this worker's.
    redis.call('HSET', KEYS[2 + 2 * i], 's', 'active', 'w', worker)
  elseif s == 'revoked' or s == 'cancelled' then
    verdict = s
    redis.call('DEL', KEYS[2 + 2 * i])
  elseif s == 'cancelling' then
    verdict = 'cancelled'
    t = redis.call('HMGET', KEYS[2 + 2 * i], 'n', 'a', 'w', 'b', 'x')
    local ok, err = pcall(cjson.decode, t[5] or '')
    if not ok then
      err = { name = 'CancelledError', code = 'E_CANCELLED', message = 'cancelled' }
    end
    local record = cjson.encode({
      state = 'cancelled', task = t[1] or '?', attempt = tonumber(t[2] or '1') or 1, worker = t[3] or '',
      startedAt = now, finishedAt = now, by = t[4] or '', error = err
    })
    redis.call('SET', KEYS[3 + 2 * i], record, 'PX', ARGV[2])
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', '$EVENT_IDS_FIELD', id, '$EVENT_RECORDS_FIELD', record)
    redis.call('DEL', KEYS[2 + 2 * i])
  end
  out[i] = verdict
end
return out
