-- Fenced attempts, the cheap way: a queue's moves key (`moves`, through KEYS) keeps the highest
-- millisecond part of any stream entry id taken from the worker that held it (reclaimed from a
-- worker presumed dead, revoked while fetched). An entry newer than that was never taken from
-- anyone, so finish.lua records a batch of such entries without reading its worker's pending list.
-- The millisecond part of an entry id ("1700000000000-3" -> 1700000000000).
local function entry_ms(entry)
  return tonumber(string.match(entry, '^%d+'))
end
-- Entries up to `ms` were taken from their holder: raise the mark (it never goes down).
local function moved(moves, ms)
  local last = tonumber(redis.call('GET', moves) or '0')
  if ms > last then
    redis.call('SET', moves, ms)
  end
end
