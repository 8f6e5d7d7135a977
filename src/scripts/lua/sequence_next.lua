--[[ sequence_next: allocate the next n ids of a sequence.
KEYS[1] counter  the sequence's counter (the last id issued)
ARGV[1] n        how many ids to allocate (>= 1)
ARGV[2] floor    'clock' to keep ids above the server clock (µs), 'none' for a plain counter
ARGV[3] ahead    with 'clock': most µs the counter may run ahead of the clock
Returns: {1, last} when allocated (the ids are last-n+1 .. last, decimal string); {0, wait} when the
counter is ahead of the clock by more than ARGV[3] (nothing allocated; wait µs, then call again).
With 'clock', a counter that is missing (first use, Redis restarted without persistence, deleted)
starts above clock + ahead, every id is > the clock and <= clock + ahead when issued, so ids issued after a loss stay above the ids
issued before it (see docs/keyspaces.md, sequences). No shebang on purpose: at maxmemory the SET is
refused before anything is written.
]]
local n = tonumber(ARGV[1])
if ARGV[2] ~= 'clock' then
  return {1, string.format('%d', redis.call('INCRBY', KEYS[1], n))}
end
local now = redis.call('TIME')
local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
local ahead = tonumber(ARGV[3])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last == 0 then
  -- Lost or new: start above every id issued before (each was <= its clock + ahead).
  last = clock + ahead
  redis.call('SET', KEYS[1], string.format('%d', last))
elseif last < clock then
  last = clock
end
if last + n > clock + ahead then
  return {0, string.format('%d', last + n - clock - ahead)}
end
last = last + n
-- string.format: a Lua number passed to redis.call is printed with 14 digits and would be rounded.
redis.call('SET', KEYS[1], string.format('%d', last))
return {1, string.format('%d', last)}
