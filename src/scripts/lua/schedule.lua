--[[ schedule: park a message until its due time.
KEYS[1] delayed  the queue's delayed set
KEYS[2] parked   the queue's parked messages
ARGV[1] id       task id
ARGV[2] due      due time in ms
ARGV[3] message  encoded message
Returns: 1
]]
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
