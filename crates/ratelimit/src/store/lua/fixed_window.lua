-- Fixed window counter: the notes' INCR + EXPIRE, made atomic with the check.
-- KEYS[1] = counter prefix; ARGV = limit, window_us.
-- Returns {allowed, remaining, retry_after_us, reset_after_us, delay_us}.
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local index = math.floor(now / window)
local key = KEYS[1] .. ':' .. string.format('%d', index)
local count = tonumber(redis.call('GET', key) or '0') or 0
local reset = (index + 1) * window - now
local allowed, retry = 0, 0
if count < limit then
  count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000) end
  allowed = 1
else
  retry = math.max(1, reset)
end
return {allowed, math.max(0, limit - count), retry, reset, 0}
