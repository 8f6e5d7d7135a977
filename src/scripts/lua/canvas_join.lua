--[[ canvas_join: record one group member's result, once per member, and say whether the group is complete.
KEYS[1] canvas  the canvas's state (hash)
ARGV[1] ttl     ms to keep the state (renewed)
ARGV[2] group   the group's node index
ARGV[3] member  the member's position in the group (0-based)
ARGV[4] value   the member's result, JSON
ARGV[5] size    how many members the group has
Returns: {-1} when the canvas has failed (nothing more runs), {0} while members are missing,
{1, value...} with every member's result in order once all are in (again on every later call, so a
continuation that runs twice carries on the same way).
]]
if redis.call('HEXISTS', KEYS[1], 'x') == 1 then
  return {-1}
end
local count
if redis.call('HSETNX', KEYS[1], 'v' .. ARGV[2] .. ':' .. ARGV[3], ARGV[4]) == 1 then
  count = redis.call('HINCRBY', KEYS[1], 'n' .. ARGV[2], 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
else
  count = tonumber(redis.call('HGET', KEYS[1], 'n' .. ARGV[2]) or '0')
end
local size = tonumber(ARGV[5])
if count < size then
  return {0}
end
local fields = {}
for i = 0, size - 1 do
  fields[#fields + 1] = 'v' .. ARGV[2] .. ':' .. i
end
return {1, unpack(redis.call('HMGET', KEYS[1], unpack(fields)))}
