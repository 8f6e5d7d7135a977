--[[ lock_release: delete a lock only if this holder still owns it.
KEYS[1] lock   the lock's owner key
ARGV[1] owner  owner token of the holder's acquisition
Returns: 1 when released; 0 when the lock had expired or belongs to another holder (nothing done).
No shebang on purpose: GET and DEL are allowed when Redis is at maxmemory, so release keeps working.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
