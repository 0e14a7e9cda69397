-- Sliding window counter: current and previous fixed-window counts, blended.
-- KEYS[1] = counters; ARGV = limit, window_us.
-- Returns {allowed, remaining, retry_after_us, reset_after_us, delay_us}.
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local index = math.floor(now / window)
local s = redis.call('HMGET', KEYS[1], 'index', 'curr', 'prev')
local stored, curr, prev = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
if stored == nil then stored = index end
if index == stored + 1 then prev, curr = curr, 0 elseif index > stored + 1 then prev, curr = 0, 0 end
if index < stored then index = stored end
local elapsed = math.max(0, now - index * window)
local function estimate(c) return c + math.floor(prev * (window - elapsed) / window) end
local allowed, retry = 0, 0
if estimate(curr) < limit then
  curr = curr + 1
  allowed = 1
else
  local e = window
  if curr < limit and prev > 0 then e = window - math.ceil((limit - curr) * window / prev) + 1 end
  if e < window then
    retry = math.max(1, e - elapsed)
  else
    retry = window - elapsed
    if curr > 0 then retry = retry + math.max(0, window - math.ceil(limit * window / curr) + 1) end
  end
end
redis.call('HSET', KEYS[1], 'index', string.format('%d', index), 'curr', curr, 'prev', prev)
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * window / 1000) + 1000)
local reset = (index + 1) * window - now
if curr > 0 then reset = reset + window end
return {allowed, math.max(0, limit - estimate(curr)), retry, reset, 0}
