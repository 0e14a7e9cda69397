-- Leaking bucket (a FIFO drained at a fixed rate), kept as the time the queue
-- is next free. KEYS[1] = bucket; ARGV = limit, window_us, burst (queue size).
-- Returns {allowed, remaining, retry_after_us, reset_after_us, delay_us}.
local limit, window, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = window / limit
local tail = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local backlog = math.max(0, tail - now)
local capacity = burst * interval
local allowed, retry, delay = 0, 0, 0
if backlog <= capacity then
  local departure = math.max(tail, now)
  tail = departure + interval
  delay = math.ceil(departure - now)
  allowed = 1
else
  retry = math.ceil(backlog - capacity)
end
local after = math.max(0, tail - now)
local waiting = 0
if after > 0 then waiting = math.ceil(after / interval) - 1 end
redis.call('SET', KEYS[1], string.format('%.17g', tail), 'PX', math.ceil(after / 1000) + 1000)
return {allowed, math.max(0, burst - waiting), retry, math.ceil(after), delay}
