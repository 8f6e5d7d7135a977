--[[ lock_extend: change the TTL of a lock this holder still owns; never re-acquires.
KEYS[1] lock   the lock's owner key
ARGV[1] owner  owner token of the holder's acquisition
ARGV[2] ms     new TTL in ms (> 0), or ms to add when ARGV[3] is "add"
ARGV[3] mode   "replace" (TTL becomes ms) or "add" (TTL grows by ms)
Returns: the lock's new TTL in ms; 0 when the lock had expired or belongs to another holder (nothing
done); -1 when ms is not a positive integer (nothing done: PEXPIRE with ms <= 0 would delete the key).
No shebang on purpose: GET, PTTL and PEXPIRE are allowed when Redis is at maxmemory.
]]
local ms = tonumber(ARGV[2])
if not ms or ms <= 0 or ms ~= math.floor(ms) then
  return -1
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == 'add' then
  local left = redis.call('PTTL', KEYS[1])
  if left > 0 then
    ms = ms + left
  end
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', ms))
return ms
