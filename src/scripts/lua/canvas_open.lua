--[[ canvas_open: store a new canvas's definition and its pending record, before its first tasks are enqueued.
KEYS[1] canvas      the canvas's state (hash, in its home queue's slot)
KEYS[2] result      the canvas's result key (its record, waited on like a task's)
ARGV[1] ttl         ms to keep both (the app's result TTL)
ARGV[2] definition  JSON definition of the canvas
ARGV[3] record      JSON record of the canvas while it runs (state "queued")
Returns: 1
]]
redis.call('HSET', KEYS[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[1])
return 1
