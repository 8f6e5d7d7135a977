-- Appends one completion event to a queue's events stream (`events`, a key the caller got through
-- KEYS): the finished tasks' ids, and with `withRecords` their records, one per line. A big batch
-- (`inline` false) carries only the records of tasks that keep none (storeResult: false): those
-- events are kept a minute at most (by Redis's clock, that of the stream ids), so what waiters need
-- does not grow with the event cap times the batch size.
local function announce(events, maxlen, ids, records, withRecords, inline)
  if withRecords then
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', '$EVENT_IDS_FIELD', table.concat(ids, ' '), '$EVENT_RECORDS_FIELD', table.concat(records, '\n'))
    if not inline then
      local now = redis.call('TIME')
      redis.call('XTRIM', events, 'MINID', '~', (tonumber(now[1]) * 1000 - $EVENTS_RECORDS_KEPT_MS) .. '-0')
    end
  else
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', '$EVENT_IDS_FIELD', table.concat(ids, ' '))
  end
end
