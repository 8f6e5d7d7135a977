--[[ finish: record finished attempts of one queue; ack and delete their entries in one step.
KEYS[1] stream      the queue's stream
KEYS[2] events      the queue's completion events
KEYS[3] parked      the queue's parked messages
KEYS[4] delayed     the queue's delayed set
KEYS[5] dead        the queue's dead-letter stream
KEYS[6..] results   one result key per task, in the order of the tasks in ARGV
ARGV[1] group       consumer group
ARGV[2] ttl         ms to keep each result
ARGV[3] maxlen      approximate cap of the events stream
ARGV[4] deadmaxlen  approximate cap of the dead-letter stream
ARGV[5] deadminid   dead letters older than this stream id are trimmed ("0" keeps all)
ARGV[6] inline      "1" to copy the records into the completion event (small batches), so waiters need no read
ARGV[7..] tasks     six values per task: entry id, task id ("" when it is the entry id), record, outcome, due, payload.
                    outcome is "done" (record only), "retry" (park payload, a message, until due),
                    "dead" (append payload, a dead letter, to the dead-letter stream),
                    or "defer" (a rate limit holds it back: park payload until due, store no record
                    and announce nothing, since it did not run);
                    a "!" after it ("done!", "retry!") says store no record under the result key:
                    the record goes in the completion event instead, for waiters (storeResult: false);
                    a "+" last ("done+", "done!+") says the task id is parked and its field must go.
Returns: the number of entries acknowledged.
]]
local n = (#ARGV - 6) / 6
local entries = {}
for i = 1, n do
  entries[i] = ARGV[6 + (i - 1) * 6 + 1]
end
-- Ack and delete first. At maxmemory Redis refuses a script whose first write is a command that
-- may grow memory (SET, XADD) but lets the rest run once the script has written: XACK and XDEL free
-- memory, so a full Redis still records finished tasks and drains instead of stalling.
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
redis.call('XDEL', KEYS[1], unpack(entries))
local announced = {}
local unpark = {}
local dead = 0
local records = {}
local inline = ARGV[6] == '1'
local withRecords = inline
for i = 1, n do
  local base = 6 + (i - 1) * 6
  local id = ARGV[base + 2]
  if id == '' then
    id = ARGV[base + 1]
  end
  local outcome = ARGV[base + 4]
  if string.sub(outcome, 1, 5) == 'defer' then
    -- Held back by a rate limit: it did not run, so no record and no completion event.
    redis.call('ZADD', KEYS[4], ARGV[base + 5], id)
    redis.call('HSET', KEYS[3], id, ARGV[base + 6])
  else
    announced[#announced + 1] = id
    if string.find(outcome, '!', 1, true) then
      -- No record kept: the completion event carries it, for whoever waits.
      records[#records + 1] = ARGV[base + 3]
      withRecords = true
    else
      records[#records + 1] = inline and ARGV[base + 3] or ''
      redis.call('SET', KEYS[5 + i], ARGV[base + 3], 'PX', ARGV[2])
    end
    if string.sub(outcome, 1, 5) == 'retry' then
      redis.call('ZADD', KEYS[4], ARGV[base + 5], id)
      redis.call('HSET', KEYS[3], id, ARGV[base + 6])
    else
      if string.sub(outcome, -1) == '+' then
        unpark[#unpark + 1] = id
      end
      if string.sub(outcome, 1, 4) == 'dead' then
        redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', '$DEAD_FIELD', ARGV[base + 6])
        dead = dead + 1
      end
    end
  end
end
if #unpark > 0 then
  redis.call('HDEL', KEYS[3], unpack(unpark))
end
if dead > 0 and ARGV[5] ~= '0' then
  redis.call('XTRIM', KEYS[5], 'MINID', '~', ARGV[5])
end
if #announced == 0 then
  return acked
end
if withRecords then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', '$EVENT_IDS_FIELD', table.concat(announced, ' '), '$EVENT_RECORDS_FIELD', table.concat(records, '\n'))
  if not inline then
    -- Records of tasks that keep none (storeResult: false) ride in big batches' events too: keep
    -- those events a minute at most (by Redis's clock, that of the stream ids), so what waiters
    -- need does not grow with the event cap times the batch size.
    local now = redis.call('TIME')
    redis.call('XTRIM', KEYS[2], 'MINID', '~', (tonumber(now[1]) * 1000 - $EVENTS_RECORDS_KEPT_MS) .. '-0')
  end
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', '$EVENT_IDS_FIELD', table.concat(announced, ' '))
end
return acked
