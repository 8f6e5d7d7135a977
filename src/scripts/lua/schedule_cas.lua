--[[ schedule_cas: change one schedule only if nobody changed it since it was read (compare and set),
so beats reconciling the app's schedules and the CLI never overwrite each other's changes unseen.
KEYS[1] schedules  the hash of schedules (field = name, value = JSON)
ARGV[1] name       the schedule's name
ARGV[2] expected   the value as it was read; '' when the schedule must not exist
ARGV[3] value      the new value; '' to delete the schedule
Returns: 1 written; 0 the schedule changed since it was read (nothing done).
]]
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
