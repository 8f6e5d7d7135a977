--[[ canvas_close: record how a canvas ended (its record, for waiters) — once: the first failure or the success.
KEYS[1] canvas   the canvas's state (hash)
KEYS[2] result   the canvas's result key
KEYS[3] events   the home queue's completion events
ARGV[1] ttl      ms to keep the record and the state
ARGV[2] outcome  "ok" or "failed"
ARGV[3] record   JSON record of the canvas (succeeded with its result, or failed naming the member)
ARGV[4] id       the canvas's task id (local part), announced on the completion events
ARGV[5] maxlen   approximate cap of the events stream
ARGV[6] failure  failed: JSON {id, task, error} of the member that failed
Returns: 1 when this call ended the canvas, 0 when it had ended already.
]]
if ARGV[2] == 'ok' then
  if redis.call('HEXISTS', KEYS[1], 'x') == 1 or redis.call('HSETNX', KEYS[1], 'z', '1') == 0 then
    return 0
  end
else
  if redis.call('HEXISTS', KEYS[1], 'z') == 1 or redis.call('HSETNX', KEYS[1], 'x', ARGV[6]) == 0 then
    return 0
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', '$EVENT_IDS_FIELD', ARGV[4])
return 1
