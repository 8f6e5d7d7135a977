--[[ record_outcomes: record finished attempts of one queue whose tasks travel on another broker
(RabbitMQ): the results and the completion event stay on Redis, the broker acks its deliveries
itself once this has run. No stream, no pending list, no parked or delayed set: a retry's message is
published to the broker's delay queues by the caller. Messages that must follow the outcomes (canvas
continuations) are written to the queue's outbox in the same step; the caller publishes them to the
broker and then deletes them (a worker relays what a crash left there).
KEYS[1] events      the queue's completion events
KEYS[2] dead        the queue's dead-letter stream
KEYS[3] outbox      the queue's outbox (messages to publish to the broker)
KEYS[4..] results   one result key per task, in the order of the tasks in ARGV
ARGV[1] ttl         ms to keep each result
ARGV[2] maxlen      approximate cap of the events stream
ARGV[3] deadmaxlen  approximate cap of the dead-letter stream
ARGV[4] deadminid   dead letters older than this stream id are trimmed ("0" keeps all)
ARGV[5] inline      "1" to copy the records into the completion event (small batches)
ARGV[6] n           how many tasks follow
ARGV[7..] tasks     four values per task: task id, record, outcome, and for "dead" the dead letter
                    ("" when unused).
                    outcome is "done", "retry" (a record only; the caller publishes the retry) or
                    "dead" (append the dead letter); a "!" after it says store no record under the
                    result key: it goes in the completion event instead (storeResult: false).
ARGV[7+4n..] outbox two values per message to write to the outbox: its task id, its message (a canvas
                    member's continuation, for a final outcome).
Returns: {recorded, outbox entry ids...}: the number of tasks recorded, then the outbox entry id of
each message, in the order given.
]]
-- @include announce (lib/announce.lua: one completion event)
local PER = 4
local n = tonumber(ARGV[6])
local announced = {}
local records = {}
local inline = ARGV[5] == '1'
local withRecords = inline
local dead = 0
for i = 1, n do
  local base = 6 + (i - 1) * PER
  local outcome = ARGV[base + 3]
  announced[#announced + 1] = ARGV[base + 1]
  if string.find(outcome, '!', 1, true) then
    records[#records + 1] = ARGV[base + 2]
    withRecords = true
  else
    records[#records + 1] = inline and ARGV[base + 2] or ''
    redis.call('SET', KEYS[3 + i], ARGV[base + 2], 'PX', ARGV[1])
  end
  if string.sub(outcome, 1, 4) == 'dead' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', '$DEAD_FIELD', ARGV[base + 4])
    dead = dead + 1
  end
end
if dead > 0 and ARGV[4] ~= '0' then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[4])
end
local reply = {n}
for j = 7 + n * PER, #ARGV, 2 do
  reply[#reply + 1] = redis.call('XADD', KEYS[3], '*', '$OUTBOX_ID_FIELD', ARGV[j], '$OUTBOX_MESSAGE_FIELD', ARGV[j + 1])
end
if n > 0 then
  announce(KEYS[1], ARGV[2], announced, records, withRecords, inline)
end
return reply
