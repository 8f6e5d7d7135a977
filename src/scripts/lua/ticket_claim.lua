--[[ ticket_claim: a worker claims the tasks of a batch it fetched from RabbitMQ: each ticket then
says active on this worker (so a revoke or cancel knows the task runs, and where). A task revoked,
cancelled or purged before this moment is not to be run: the verdict says so.
KEYS[1] delayed   the queue's delayed set
KEYS[2] purges    the queue's purge generation
KEYS[3] tickets   the queue's tickets
ARGV[1] worker    this worker's name
ARGV[2..] ids     one task id per task
Returns: one verdict per task, in order: "" run it (also for a task with no ticket: a message from
another producer); "revoked" / "cancelled": revoked or cancelled before (its record is written), do
not run it; "purged": published before the queue's last purge, do not run it (no record); a
ticket's whole value ("cancelling|..."): cancelled while it ran on a worker that died since, not to
be run: the caller records it cancelled (with record_outcomes.lua, which deletes the ticket).
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local worker = string.gsub(ARGV[1], '|', '/')
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
local vals = chunked('HMGET', KEYS[3], ids, 1000)
local gen
local set = {}
local gone = {}
local zrem = {}
local out = {}
for i, id in ipairs(ids) do
  local v = vals[i]
  local verdict = ''
  if v then
    -- "s|g|d|a|w|n..." read and rewritten in place: state, generation, the middle, and the tail.
    local s, g, mid, tail = string.match(v, '^(%a+)|(%d*)|([^|]*|[^|]*)|[^|]*(.*)$')
    if s == 'queued' or s == 'delayed' or s == 'active' then
      if s == 'delayed' then
        zrem[#zrem + 1] = id
      end
      if s ~= 'active' then
        gen = gen or tonumber(redis.call('GET', KEYS[2]) or '0')
      end
      if s ~= 'active' and (tonumber(g) or 0) < gen then
        verdict = 'purged'
        gone[#gone + 1] = id
      else
        -- Delivered now, or again (its worker died, or handed it back): this worker's.
        set[#set + 1] = id
        set[#set + 1] = 'active|' .. g .. '|' .. mid .. '|' .. worker .. tail
      end
    elseif s == 'revoked' or s == 'cancelled' then
      verdict = s
      gone[#gone + 1] = id
    elseif s == 'cancelling' then
      verdict = v
    end
  end
  out[i] = verdict
end
if #set > 0 then
  chunked('HSET', KEYS[3], set, 1000)
end
if #gone > 0 then
  chunked('HDEL', KEYS[3], gone, 1000)
end
if #zrem > 0 then
  chunked('ZREM', KEYS[1], zrem, 1000)
end
return out
