-- Sliding window log in a sorted set scored by admission time (µs).
-- KEYS[1] = log; ARGV = limit, window_us.
-- Returns {allowed, remaining, retry_after_us, reset_after_us, delay_us}.
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
local allowed, retry = 0, 0
if count < limit then
  -- (now, count) is unique: two admissions in one µs see different counts.
  redis.call('ZADD', KEYS[1], string.format('%d', now), string.format('%d-%d', now, count))
  count = count + 1
  allowed = 1
else
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  retry = math.max(1, tonumber(oldest[2]) + window - now)
end
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local reset = 0
if newest[2] then reset = tonumber(newest[2]) + window - now end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return {allowed, limit - count, retry, reset, 0}
