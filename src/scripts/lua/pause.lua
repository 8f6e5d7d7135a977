--[[ pause: pause or resume a queue for every worker, and tell them through its control stream.
KEYS[1] paused    the queue's pause marker
KEYS[2] control   the queue's control stream
ARGV[1] op        "pause" or "resume"
ARGV[2] value     pause: JSON of who paused it and when
ARGV[3] message   JSON control message for the workers
ARGV[4] maxlen    approximate cap of the control stream
ARGV[5] minid     control entries older than this stream id are trimmed
Returns: 1 when the state changed, 0 when the queue was already so (no message sent).
]]
if ARGV[1] == 'pause' then
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX') then
    return 0
  end
elseif redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', '$CONTROL_FIELD', ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[5])
return 1
