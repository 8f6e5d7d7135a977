-- A message's task name, attempt, task id (nil: its entry id) and canvas member reference (nil: not
-- a member): format 1 is ["<task>",<args>,{"n":attempt,...}], format 2 is {"t":"<task>","n":attempt,...}.
-- An undecodable message gives "?" and 1.
local function task_of(message)
  local ok, m = pcall(cjson.decode, message)
  if not ok or type(m) ~= 'table' then
    return '?', 1
  end
  if m[1] ~= nil then
    local meta = m[3]
    if type(meta) ~= 'table' then
      return tostring(m[1]), 1, nil, nil
    end
    return tostring(m[1]), tonumber(meta.n) or 1, meta.id, meta.c
  end
  return tostring(m.t or '?'), tonumber(m.n) or 1, m.id, m.c
end
