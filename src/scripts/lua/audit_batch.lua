#!lua flags=no-writes
--[[ audit_batch: what the key audit needs of a batch of keys, in one round trip. Read-only.
KEYS[1..] keys  the keys one SCAN batch returned (one node; on a Redis Cluster the audit does not use
                this script, since a batch spans slots)
ARGV[1..] head  per key: how many bytes of its value's head to return if it is a string (0: none)
Returns: one flat list, five entries per key in order: type (1 string, 2 hash, 3 list, 4 set, 5 zset,
6 stream, 0 none; any other type by its name), pttl (-2 gone, -1 no TTL), memory
(MEMORY USAGE bytes, -1 unknown), idle (OBJECT IDLETIME seconds, -1 when Redis does not track it,
e.g. under an LFU maxmemory-policy), head (the value's first bytes, or '' ).
Runs with EVALSHA_RO / EVAL_RO, so an ACL user limited to read-only commands may run it.
]]
local TYPES = {string = 1, hash = 2, list = 3, set = 4, zset = 5, stream = 6, none = 0}
local out = {}
local n = 0
for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  local pttl = redis.call('PTTL', KEYS[i])
  local mem = redis.call('MEMORY', 'USAGE', KEYS[i]) or -1
  local idle = redis.pcall('OBJECT', 'IDLETIME', KEYS[i])
  if type(idle) ~= 'number' then
    idle = -1
  end
  local head = ''
  local want = tonumber(ARGV[i]) or 0
  if kind == 'string' and want > 0 then
    head = redis.call('GETRANGE', KEYS[i], 0, want - 1)
  end
  out[n + 1] = TYPES[kind] or kind
  out[n + 2] = pttl
  out[n + 3] = mem
  out[n + 4] = idle
  out[n + 5] = head
  n = n + 5
end
return out
