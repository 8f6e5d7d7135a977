--[[ revoke: take a task off its queue before it runs (op "revoke" or "cancel"), or, when a worker
holds it, tell that worker through the queue's control stream. Wherever the task is, one step.
KEYS[1] stream    the queue's stream
KEYS[2] parked    the queue's parked messages
KEYS[3] delayed   the queue's delayed set
KEYS[4] result    the task's result key
KEYS[5] events    the queue's completion events
KEYS[6] control   the queue's control stream
KEYS[7] level1    the queue's stream of priority level 1
KEYS[8] level2    the queue's stream of priority level 2
KEYS[9] level3    the queue's stream of priority level 3
KEYS[10] moves    the queue's moves mark: raised when a revoke takes a fetched task (lib/moved.lua)
ARGV[1] id        task id (local part)
ARGV[2] group     consumer group
ARGV[3] op        "revoke" or "cancel"
ARGV[4] by        who asks (written in the record and the control message)
ARGV[5] now       ms
ARGV[6] ttl       ms to keep the record
ARGV[7] error     JSON of the stored error the record carries (E_REVOKED or E_CANCELLED)
ARGV[8] maxlen    approximate cap of the events stream
ARGV[9] ctlmaxlen approximate cap of the control stream
ARGV[10] ctlminid control entries older than this stream id are trimmed
Returns: one of
  {"delayed"}            it waited in the delayed set (a delay or a retry): removed, record written
  {"queued"}             it waited in the stream, no worker had it: deleted, record written
  {"fetched", consumer}  revoke: a worker had fetched it: taken from that worker (its outcome will
                         not be recorded), record written, control message sent
  {"running", consumer}  cancel: a worker holds it: control message sent; that worker records it
                         cancelled when its attempt ends
  {"finished", record}   it had finished already: nothing done
  {"unknown"}            no such task (never enqueued, purged, or its record expired)
A revoke writes state "revoked"; a cancel of a task no worker holds writes "cancelled". A task on a
priority level's stream is found there (its id or parked pointer is "<entry id>p<level>"); the control
message names its delivery by that reference too, as the worker does.
]]
-- @include task_of (lib/task_of.lua: a message's task name and attempt)
-- @include moved (lib/moved.lua: the moves mark)
local id = ARGV[1]
local op = ARGV[3]
local now = tonumber(ARGV[5])

-- The record of a task that did not run (or whose attempt is taken away), and its completion event;
-- for a canvas member, its continuation, as finish.lua appends it for a member's final outcome, so
-- the canvas fails at once instead of waiting for a member that will never finish.
local function finish(message, worker)
  local name, attempt, _, canvas = task_of(message)
  local state = 'revoked'
  if op == 'cancel' then
    state = 'cancelled'
  end
  local record = cjson.encode({
    state = state, task = name, attempt = attempt, worker = worker, startedAt = now,
    finishedAt = now, by = ARGV[4], error = cjson.decode(ARGV[7])
  })
  redis.call('SET', KEYS[4], record, 'PX', ARGV[6])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', '$EVENT_IDS_FIELD', id, '$EVENT_RECORDS_FIELD', record)
  if type(canvas) == 'string' and string.match(canvas, '^%d+%-[0-9a-z]+@[%w_.%-]+:%d+$') then
    local continuation = '["$CANVAS_TASK",{"c":"' .. canvas .. '","r":' .. record .. '}]'
    redis.call('XADD', KEYS[1], '*', '$MESSAGE_FIELD', continuation)
  end
end

local function tell(entry)
  local message = cjson.encode({ op = op, id = id, e = entry, by = ARGV[4], at = now })
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[9], '*', '$CONTROL_FIELD', message)
  redis.call('XTRIM', KEYS[6], 'MINID', '~', ARGV[10])
end

local entry
local parked = redis.call('HGET', KEYS[2], id)
if parked then
  if string.sub(parked, 1, 1) ~= '=' then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[2], id)
    finish(parked, '')
    return {'delayed'}
  end
  entry = string.sub(parked, 2)
elseif string.match(id, '^%d+%-%d+$') or string.match(id, '^%d+%-%d+p%d$') then
  entry = id
end
-- The stream the entry is on: KEYS[1] (level 0), or KEYS[6 + level].
local s = 1
local ref = entry
if entry then
  local raw, level = string.match(entry, '^(%d+%-%d+)p(%d)$')
  if raw then
    entry = raw
    s = 6 + tonumber(level)
    if s < 7 or s > 9 then
      entry = nil
    end
  end
end
if entry then
  local found = redis.call('XRANGE', KEYS[s], entry, entry)
  if #found > 0 then
    local fields = found[1][2]
    local message = fields[2]
    local ok, pending = pcall(redis.call, 'XPENDING', KEYS[s], ARGV[2], entry, entry, 1)
    local holder = ok and pending[1] and pending[1][2]
    if not holder then
      redis.call('XDEL', KEYS[s], entry)
      if parked then
        redis.call('HDEL', KEYS[2], id)
      end
      finish(message, '')
      return {'queued'}
    end
    if op == 'revoke' then
      -- Out of the holder's pending list: its heartbeat and its settle (fenced) see it gone.
      redis.call('XACK', KEYS[s], ARGV[2], entry)
      redis.call('XDEL', KEYS[s], entry)
      moved(KEYS[10], entry_ms(entry))
      if parked then
        redis.call('HDEL', KEYS[2], id)
      end
      finish(message, holder)
      tell(ref)
      return {'fetched', holder}
    end
    tell(ref)
    return {'running', holder}
  end
end
local record = redis.call('GET', KEYS[4])
if record then
  return {'finished', record}
end
return {'unknown'}
