--[[ channel_publish: append messages to a channel's stream and keep it bounded by length and age.
KEYS[1] channel   the channel's stream
ARGV[1] maxLen    approximate most entries kept (XADD MAXLEN ~)
ARGV[2] minId     entries older than this id go (XTRIM MINID ~): now minus the channel's maxAge
ARGV[3..] message one JSON message per argument, appended in order
Returns: the new entries' ids, in order.
]]
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', '$CHANNEL_FIELD', ARGV[i])
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
return ids
