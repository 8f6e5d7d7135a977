--[[ purge_tickets: the Redis half of a purge on RabbitMQ (the broker purges its queue itself). The
first call raises the queue's purge generation: every task published to the queue until now that no
worker has taken is purged, wherever its message is (a delay level, or pushed to a worker that has
not taken it), since a worker drops a message whose ticket has an older generation when it fetches
it (ticket_claim.lua), and lookup and revoke call it unknown. Each call also sweeps one page of the
tickets: those of waiting tasks ("queued") of an older generation go (their messages went with the
queue's purge); those of delayed tasks stay until their messages come out of the delay levels.
KEYS[1] delayed   the queue's delayed set
KEYS[2] purges    the queue's purge generation
KEYS[3] tickets   the queue's tickets
ARGV[1] oldest    ms: delayed members due before this are stale (their messages were lost) and not counted
ARGV[2] cursor    "" for the first call (it raises the generation), then the cursor the last call returned
ARGV[3] count     tickets to look at in this call
Returns: {delayed, next}: how many delayed tasks (retries waiting for their time included) were
purged (first call; 0 after), and the cursor of the next call ("" when the sweep is done).
]]
-- @include ticket (lib/ticket.lua: read and write a ticket)
local delayed = 0
local cursor = ARGV[2]
if cursor == '' then
  delayed = redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf')
  redis.call('DEL', KEYS[1])
  redis.call('INCR', KEYS[2])
  cursor = '0'
end
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local page = redis.call('HSCAN', KEYS[3], cursor, 'COUNT', ARGV[3])
local gone = {}
local fields = page[2]
for i = 1, #fields, 2 do
  local t = ticket_of(fields[i + 1])
  if t and t.s == 'queued' and t.g < gen then
    gone[#gone + 1] = fields[i]
  end
end
if #gone > 0 then
  chunked('HDEL', KEYS[3], gone, 1000)
end
if page[1] == '0' then
  return {delayed, ''}
end
return {delayed, page[1]}
