-- Priority levels (src/wire/priority.ts). level_of(message): a message's level, its meta "l"
-- (1..$MAX_PRIORITY), 0 when it has none; a message without the text "l": is not decoded.
-- level_stream(first, level, control): the index in KEYS of the stream for `level`, where
-- KEYS[first] is the queue's stream and KEYS[first + n] the stream of level n. The first time a
-- level's stream is used it is made with the consumer group, and a "levels" message on the queue's
-- control stream (KEYS[control]) tells its workers to read it from now on.
local function level_of(message)
  if not string.find(message, '"l":', 1, true) then
    return 0
  end
  local ok, m = pcall(cjson.decode, message)
  if not ok or type(m) ~= 'table' then
    return 0
  end
  local meta = m
  if m[1] ~= nil then
    meta = m[3]
  end
  if type(meta) ~= 'table' then
    return 0
  end
  local l = tonumber(meta.l)
  if l and l >= 1 and l <= $MAX_PRIORITY and l == math.floor(l) then
    return l
  end
  return 0
end

local levels_made = {}
local function level_stream(first, level, control)
  local i = first + level
  if level > 0 and not levels_made[level] then
    levels_made[level] = true
    if redis.call('EXISTS', KEYS[i]) == 0 then
      redis.call('XGROUP', 'CREATE', KEYS[i], '$GROUP', '0', 'MKSTREAM')
      local now = redis.call('TIME')
      local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
      redis.call('XADD', KEYS[control], 'MAXLEN', '~', $CONTROL_MAX_LEN, '*', '$CONTROL_FIELD', cjson.encode({ op = 'levels', l = level, at = at }))
    end
  end
  return i
end
