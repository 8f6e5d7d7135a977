-- A message's task name and attempt: format 1 is ["<task>",<args>,{"n":attempt,...}], format 2 is
-- {"t":"<task>","n":attempt,...}. An undecodable message gives "?" and 1.
local function task_of(message)
  local ok, m = pcall(cjson.decode, message)
  if not ok or type(m) ~= 'table' then
    return '?', 1
  end
  if m[1] ~= nil then
    local meta = m[3]
    return tostring(m[1]), (type(meta) == 'table' and tonumber(meta.n)) or 1, (type(meta) == 'table' and meta.id) or nil
  end
  return tostring(m.t or '?'), tonumber(m.n) or 1, m.id
end
