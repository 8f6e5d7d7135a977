-- Tickets of tasks on the RabbitMQ broker: one field per task in its queue's tickets hash, the value
-- "s|g|d|a|w|n" (state, purge generation when published, due ms, attempt, worker, task name) and,
-- for a cancel asked while the task ran (state "cancelling"), "|" and a JSON {b = who, x = error}.
-- ticket_of(value) reads one (nil: no ticket), ticket_value(t) writes one, and chunked(...) calls a
-- command over a long argument list in parts (Lua's unpack takes a few thousand values at most).
local function ticket_of(v)
  if not v then
    return nil
  end
  local s, g, d, a, w, n, rest = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|?(.*)$')
  if not s then
    return nil
  end
  return { s = s, g = tonumber(g) or 0, d = d, a = tonumber(a) or 1, w = w, n = n, rest = rest }
end

local function ticket_value(t)
  local w = string.gsub(t.w or '', '|', '/')
  local n = string.gsub(t.n or '?', '|', '/')
  local v = t.s .. '|' .. t.g .. '|' .. t.d .. '|' .. t.a .. '|' .. w .. '|' .. n
  if t.rest and t.rest ~= '' then
    v = v .. '|' .. t.rest
  end
  return v
end

local function chunked(command, key, args, per)
  local out = {}
  for i = 1, #args, per do
    local part = redis.call(command, key, unpack(args, i, math.min(#args, i + per - 1)))
    if type(part) == 'table' then
      for _, x in ipairs(part) do
        out[#out + 1] = x
      end
    end
  end
  return out
end
