-- Token bucket. KEYS[1] = bucket; ARGV = limit, window_us, burst.
-- Returns {allowed, remaining, retry_after_us, reset_after_us, delay_us}.
local limit, window, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(s[1]), tonumber(s[2])
if tokens == nil or ts == nil then tokens, ts = burst, now end
if now < ts then now = ts end
local rate = limit / window
tokens = math.min(burst, tokens + (now - ts) * rate)
local allowed, retry = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate)
end
local reset = math.ceil((burst - tokens) / rate)
-- %.17g / %d: Lua's default number format keeps 14 digits, too few for µs.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(reset / 1000) + 1000)
return {allowed, math.floor(tokens), retry, reset, 0}
