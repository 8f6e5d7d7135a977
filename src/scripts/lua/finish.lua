--[[ finish: record finished attempts of one queue; ack and delete their entries in one step —
only entries still pending at the delivery count this worker claimed them at (fenced attempts): an
entry another worker took over since (its count is higher), or that is no longer pending, is left
alone and returned, so a late outcome of a worker presumed dead (paused, cut off) is never recorded
over the live attempt's.
KEYS[1] stream      the queue's stream
KEYS[2] events      the queue's completion events
KEYS[3] parked      the queue's parked messages
KEYS[4] delayed     the queue's delayed set
KEYS[5] dead        the queue's dead-letter stream
KEYS[6] moves       the queue's moves mark (lib/moved.lua): the pending list is read only for a batch
                    with an entry no newer than the last take-over, or when the mark is missing
KEYS[7..] results   one result key per task, in the order of the tasks in ARGV
ARGV[1] group       consumer group
ARGV[2] ttl         ms to keep each result
ARGV[3] maxlen      approximate cap of the events stream
ARGV[4] deadmaxlen  approximate cap of the dead-letter stream
ARGV[5] deadminid   dead letters older than this stream id are trimmed ("0" keeps all)
ARGV[6] inline      "1" to copy the records into the completion event (small batches), so waiters need no read
ARGV[7] consumer    the worker recording them
ARGV[8] oldest      the millisecond part of the oldest entry id in the batch (against the moves mark)
ARGV[9..] tasks     seven values per task: entry id, task id ("" when it is the entry id), record, outcome, due, payload,
                    deliveries (the entry's delivery count when this worker claimed it: its attempt's fence).
                    outcome is "done" (record only), "retry" (park payload, a message, until due),
                    "dead" (append payload, a dead letter, to the dead-letter stream),
                    or "defer" (a rate limit holds it back: park payload until due, store no record
                    and announce nothing, since it did not run);
                    a "!" after it ("done!", "retry!") says store no record under the result key:
                    the record goes in the completion event instead, for waiters (storeResult: false);
                    a "+" after that ("done+", "done!+") says the task id is parked and its field must go;
                    "^<ref>" last (final outcomes of canvas members only) appends the member's
                    continuation to the stream: ["$CANVAS_TASK",{"c":"<ref>","r":<record>}].
Returns: {acknowledged, stale entry ids...}: how many entries were acknowledged, then the entries
fenced out (not held by this consumer with that delivery count), of which nothing was recorded.
]]
-- @include announce (lib/announce.lua: one completion event)
local PER = 7
local n = (#ARGV - 8) / PER
-- What this consumer holds, with each entry's delivery count (its own pending list only: bounded by
-- what the worker holds, whatever the size of the group).
-- No group (the stream was deleted under the worker: FLUSHALL, a restart without persistence): it
-- holds nothing any more, so every entry is stale.
local live = {}
local entries = {}
local stale = {}
-- Nothing in the batch was ever taken from anyone (every entry is newer than the last take-over):
-- still held here at the count claimed (only a take-over moves an entry or raises its count), so
-- no pending list to read. A missing mark (a group made before it, or flushed) proves nothing.
local mark = redis.call('GET', KEYS[6])
local untouched = mark ~= false and tonumber(ARGV[8]) > tonumber(mark)
if untouched then
  for i = 1, n do
    live[i] = true
    entries[i] = ARGV[8 + (i - 1) * PER + 1]
  end
end
local held = {}
local ok = true
if not untouched then
  local pending
  ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1000000, ARGV[7])
  if ok then
    for _, p in ipairs(pending) do
      held[p[1]] = p[4]
    end
  end
end
for i = 1, (untouched and 0 or n) do
  local base = 8 + (i - 1) * PER
  local entry = ARGV[base + 1]
  local token = tonumber(ARGV[base + 7])
  local mine = held[entry] ~= nil and held[entry] == token
  if not mine and ok then
    -- Held by another consumer at the same delivery count: a take-over that was undone (a reclaim
    -- that spanned a lost connection is released again by its worker, its count restored) — nobody
    -- else ran it, so this outcome stands. Rare: one lookup per such entry.
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
    mine = p[1] ~= nil and p[1][4] == token
  end
  if mine then
    live[i] = true
    entries[#entries + 1] = entry
  else
    stale[#stale + 1] = entry
  end
end
if #entries == 0 then
  return {0, unpack(stale)}
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
-- One finished attempt (task i, its values from ARGV[base + 1]).
local function record(i, base)
  local id = ARGV[base + 2]
  if id == '' then
    id = ARGV[base + 1]
  end
  local outcome = ARGV[base + 4]
  -- A canvas member: its reference comes last, after "^" (one find per task; nothing else for the rest).
  local canvas
  local mark = string.find(outcome, '^', 1, true)
  if mark then
    canvas = string.sub(outcome, mark + 1)
    outcome = string.sub(outcome, 1, mark - 1)
  end
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
      redis.call('SET', KEYS[6 + i], ARGV[base + 3], 'PX', ARGV[2])
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
      if canvas then
        -- In the same step as the outcome, in the same slot: the canvas learns of it exactly when it
        -- is recorded, and a fenced-out attempt (not live here) tells it nothing.
        local continuation = '["$CANVAS_TASK",{"c":"' .. canvas .. '","r":' .. ARGV[base + 3] .. '}]'
        redis.call('XADD', KEYS[1], '*', '$MESSAGE_FIELD', continuation)
      end
    end
  end
end

for i = 1, n do
  if live[i] then
    record(i, 8 + (i - 1) * PER)
  end
end
if #unpark > 0 then
  redis.call('HDEL', KEYS[3], unpack(unpark))
end
if dead > 0 and ARGV[5] ~= '0' then
  redis.call('XTRIM', KEYS[5], 'MINID', '~', ARGV[5])
end
if #announced == 0 then
  return {acked, unpack(stale)}
end
announce(KEYS[2], ARGV[3], announced, records, withRecords, inline)
return {acked, unpack(stale)}
