-- A message's field: a claim-checked message (format 2, field $CLAIM_MESSAGE_FIELD) starts with '{',
-- a format 1 message (field $MESSAGE_FIELD) with '['.
local function field_of(message)
  if string.byte(message, 1) == 123 then
    return '$CLAIM_MESSAGE_FIELD'
  end
  return '$MESSAGE_FIELD'
end
