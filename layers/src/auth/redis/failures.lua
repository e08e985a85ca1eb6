-- Count one failure of a key and answer its failures within the window, atomically (see
-- failures.rs).
--
-- KEYS[1]  sorted set of the key's recent failures: member id -> time (microseconds on Redis'
--          clock)
-- ARGV[1]  window in milliseconds
-- ARGV[2]  most failures kept (at least 1)
-- ARGV[3]  forget the key when the count reaches this (0: never)
-- ARGV[4]  member id for this failure (unique)
--
-- Returns the count, this failure included, at most ARGV[2].
--
-- Runs after redis_support/clock.lua, which sets `now` (Redis' time in microseconds) and `int`.

local window_ms = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local clear_at = tonumber(ARGV[3])

-- A failure counts while time + window > now.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - window_ms * 1000))
redis.call('ZADD', KEYS[1], int(now), ARGV[4])
local count = redis.call('ZCARD', KEYS[1])
if count > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - keep - 1)
  count = keep
end
if clear_at > 0 and count >= clear_at then
  redis.call('DEL', KEYS[1])
  return count
end
-- The key goes when its newest failure leaves the window.
redis.call('PEXPIRE', KEYS[1], math.max(window_ms, 1))
return count
