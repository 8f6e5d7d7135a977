--[[ record_outcomes: record finished attempts of one queue whose tasks travel on another broker
(RabbitMQ): the results and the completion event stay on Redis, the broker acks its deliveries
itself once this has run. No stream, no pending list, no parked messages: a retry's message is
published to the broker's delay queues by the caller. The tasks' tickets (see ticket_claim.lua)
fence their outcomes: a task revoked or cancelled meanwhile keeps the record the revoke wrote.
Messages that must follow the outcomes (canvas continuations) are written to the queue's outbox in
the same step; the caller publishes them to the broker and then deletes them (a worker relays what a
crash left there).
KEYS[1] events      the queue's completion events
KEYS[2] dead        the queue's dead-letter stream
KEYS[3] delayed     the queue's delayed set (a retry is named in it until it is fetched again)
KEYS[4] purges      the queue's purge generation (a retry's ticket is stamped with it)
KEYS[5] tickets     the queue's tickets
KEYS[6] outbox      the queue's outbox (messages to publish to the broker)
KEYS[7..] results   one result key per task, in the order of the tasks in ARGV
ARGV[1] ttl         ms to keep each result
ARGV[2] maxlen      approximate cap of the events stream
ARGV[3] deadmaxlen  approximate cap of the dead-letter stream
ARGV[4] deadminid   dead letters older than this stream id are trimmed ("0" keeps all)
ARGV[5] inline      "1" to copy the records into the completion event (small batches)
ARGV[6] n           how many tasks follow
ARGV[7..] tasks     five values per task: task id, record, outcome, the dead letter ("" unless
                    "dead"), the retry's due time (ms; "" unless "retry").
                    outcome is "done", "retry" (a record only; the caller publishes the retry) or
                    "dead" (append the dead letter); a "!" after it says store no record under the
                    result key: it goes in the completion event instead (storeResult: false).
ARGV[7+5n..] outbox three values per message to write to the outbox: the task it follows (a canvas
                    member, whose final outcome this is), its own task id, its message; not written
                    when that member's outcome is fenced out.
Returns: {f, the f ids of the tasks not recorded because their ticket says revoked or cancelled (the
revoke or cancel recorded them), then the outbox entry id of each message in the order given ("" for
one not written)}.
]]
-- @include announce (lib/announce.lua: one completion event)
-- @include ticket (lib/ticket.lua: read and write a ticket)
local PER = 5
local FIRST = 6
local n = tonumber(ARGV[6])
local ids = {}
for i = 1, n do
  ids[i] = ARGV[FIRST + (i - 1) * PER + 1]
end
local tickets = chunked('HMGET', KEYS[5], ids, 1000)
local announced = {}
local records = {}
local fenced = {}
local gone = {}
local set = {}
local zadd = {}
local inline = ARGV[5] == '1'
local withRecords = inline
local dead = 0
local gen
for i = 1, n do
  local base = FIRST + (i - 1) * PER
  local id = ids[i]
  local outcome = ARGV[base + 3]
  local v = tickets[i]
  -- The state is the value's first word: "revoked|..." or "cancelled|..." fence the outcome out.
  local s = v and string.match(v, '^(%a+)|')
  if s == 'revoked' or s == 'cancelled' then
    fenced[#fenced + 1] = id
    gone[#gone + 1] = id
  else
    announced[#announced + 1] = id
    if string.find(outcome, '!', 1, true) then
      records[#records + 1] = ARGV[base + 2]
      withRecords = true
    else
      records[#records + 1] = inline and ARGV[base + 2] or ''
      redis.call('SET', KEYS[6 + i], ARGV[base + 2], 'PX', ARGV[1])
    end
    if string.sub(outcome, 1, 4) == 'dead' then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', '$DEAD_FIELD', ARGV[base + 4])
      dead = dead + 1
    end
    if string.sub(outcome, 1, 5) == 'retry' then
      local due = ARGV[base + 5]
      if tonumber(due) == nil then
        due = '0'
      end
      gen = gen or tonumber(redis.call('GET', KEYS[4]) or '0')
      local name, attempt = '?', 1
      local ok, r = pcall(cjson.decode, ARGV[base + 2])
      if ok and type(r) == 'table' then
        name = tostring(r.task or '?')
        attempt = (tonumber(r.attempt) or 1) + 1
      end
      set[#set + 1] = id
      set[#set + 1] = ticket_value({ s = 'delayed', g = gen, d = due, a = attempt, w = '', n = name })
      zadd[#zadd + 1] = due
      zadd[#zadd + 1] = id
    elseif v then
      gone[#gone + 1] = id
    end
  end
end
if #gone > 0 then
  chunked('HDEL', KEYS[5], gone, 1000)
end
if #set > 0 then
  chunked('HSET', KEYS[5], set, 1000)
  chunked('ZADD', KEYS[3], zadd, 1000)
end
if dead > 0 and ARGV[4] ~= '0' then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[4])
end
local out = {#fenced}
local out_of = {}
for _, id in ipairs(fenced) do
  out[#out + 1] = id
  out_of[id] = true
end
for j = FIRST + 1 + n * PER, #ARGV, 3 do
  if out_of[ARGV[j]] then
    out[#out + 1] = ''
  else
    out[#out + 1] = redis.call('XADD', KEYS[6], '*', '$OUTBOX_ID_FIELD', ARGV[j + 1], '$OUTBOX_MESSAGE_FIELD', ARGV[j + 2])
  end
end
if #announced > 0 then
  announce(KEYS[1], ARGV[2], announced, records, withRecords, inline)
end
return out
