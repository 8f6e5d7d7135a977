#!lua flags=allow-oom
--[[ rate_limit: reserve the next start slot of a task under all its rate limits (GCRA).
Each limit keeps one key: its theoretical arrival time (TAT, µs on the Redis clock), a fixed-size
state whatever the rate or traffic. A start is allowed at the earliest time every limit allows it:
max over the limits of (TAT − tolerance), and never before now. The slot is reserved at once in
every limit (TAT = max(TAT, slot) + interval), so a task told to wait comes back at its slot and
runs without asking again, and concurrent workers never hand out the same slot twice.
Each key expires when its TAT passes: from then on a missing key means the same as an old one.
allow-oom: at maxmemory a worker must still admit rate-limited tasks to drain its queues; the state
is one short integer per limit key, rewritten in place.
KEYS[1..] limits    one GCRA state key per limit of the task, all with the task's hash tag
ARGV[1..] limits    two values per limit, in the order of KEYS: interval (µs between starts),
                    tolerance (µs: (burst − 1) × interval)
Returns: ms to wait before the reserved slot (0: start now).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local slot = now
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then
    tat = now
  end
  tats[i] = tat
  local earliest = tat - tonumber(ARGV[(i - 1) * 2 + 2])
  if earliest > slot then
    slot = earliest
  end
end
for i = 1, #KEYS do
  local tat = tats[i]
  if tat < slot then
    tat = slot
  end
  local next_tat = tat + tonumber(ARGV[(i - 1) * 2 + 1])
  redis.call('SET', KEYS[i], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
end
return math.ceil((slot - now) / 1000)
