--[[ revoke_ticket: revoke.lua for a queue whose tasks wait on RabbitMQ, where a message cannot be
taken out of its queue: the task's ticket is marked instead, and the worker that fetches the
message drops it (ticket_claim.lua). A task a worker holds is taken from it (revoke) or cancelled
through the queue's control stream, as on Redis Streams. One step, wherever the task is.
KEYS[1] tickets   the queue's tickets
KEYS[2] delayed   the queue's delayed set
KEYS[3] purges    the queue's purge generation
KEYS[4] result    the task's result key
KEYS[5] events    the queue's completion events
KEYS[6] control   the queue's control stream
ARGV[1] id        task id (local part)
ARGV[2] op        "revoke" or "cancel"
ARGV[3] by        who asks (written in the record and the control message)
ARGV[4] now       ms
ARGV[5] ttl       ms to keep the record
ARGV[6] error     JSON of the stored error the record carries (E_REVOKED or E_CANCELLED)
ARGV[7] maxlen    approximate cap of the events stream
ARGV[8] ctlmaxlen approximate cap of the control stream
ARGV[9] ctlminid  control entries older than this stream id are trimmed
Returns: one of
  {"delayed"}            it waited in a delay level: marked, record written
  {"queued"}             it waited in the queue (or pushed to a worker that has not taken it yet):
                         marked, record written
  {"fetched", worker}    revoke: a worker had fetched it: marked, record written, control message
                         sent (the worker drops it; its outcome is not recorded)
  {"running", worker}    cancel: a worker holds it: marked cancelling, control message sent; that
                         worker records it cancelled when its attempt ends
  {"finished", record}   it had finished already: nothing done
  {"unknown"}            no such task (never enqueued, purged, or its record expired)
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local id = ARGV[1]
local op = ARGV[2]
local now = tonumber(ARGV[4])
local state = 'revoked'
if op == 'cancel' then
  state = 'cancelled'
end

local function finish(t, worker)
  local record = cjson.encode({
    state = state, task = t.n, attempt = t.a, worker = worker, startedAt = now, finishedAt = now,
    by = ARGV[3], error = cjson.decode(ARGV[6])
  })
  redis.call('SET', KEYS[4], record, 'PX', ARGV[5])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', '$EVENT_IDS_FIELD', id, '$EVENT_RECORDS_FIELD', record)
end

local function tell()
  local message = cjson.encode({ op = op, id = id, e = id, by = ARGV[3], at = now })
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*', '$CONTROL_FIELD', message)
  redis.call('XTRIM', KEYS[6], 'MINID', '~', ARGV[9])
end

local t = ticket_of(redis.call('HGET', KEYS[1], id))
local s = t and t.s
if s == 'queued' or s == 'delayed' then
  if t.g < tonumber(redis.call('GET', KEYS[3]) or '0') then
    -- Purged: the ticket stays until a worker fetches the message, so that it drops it.
    return {'unknown'}
  end
  t.s = state
  redis.call('HSET', KEYS[1], id, ticket_value(t))
  if s == 'delayed' then
    redis.call('ZREM', KEYS[2], id)
  end
  finish(t, '')
  return {s}
end
if s == 'active' or s == 'cancelling' then
  local worker = t.w
  if op == 'revoke' then
    t.s = 'revoked'
    t.rest = ''
    redis.call('HSET', KEYS[1], id, ticket_value(t))
    finish(t, worker)
    tell()
    return {'fetched', worker}
  end
  t.s = 'cancelling'
  t.rest = cjson.encode({ b = ARGV[3], x = ARGV[6] })
  redis.call('HSET', KEYS[1], id, ticket_value(t))
  tell()
  return {'running', worker}
end
local record = redis.call('GET', KEYS[4])
if record then
  return {'finished', record}
end
return {'unknown'}
