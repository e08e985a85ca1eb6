-- Write bans (see ban_sync.rs).
--
-- KEYS[1]  sorted set of bans in force: address -> when the ban ends (microseconds on Redis'
--          clock)
-- KEYS[2]  sorted set of recent bans: address -> when it was banned (microseconds), for the
--          servers' incremental reads; kept for the log span
-- ARGV[1]  log span in milliseconds
-- ARGV[2], ARGV[3], ...  pairs of address and ban length in milliseconds
--
-- A ban never shortens one in force. Returns how many bans were written.
--
-- Runs after redis_support/clock.lua, which sets `now` (Redis' time in microseconds) and `int`.

local span_ms = tonumber(ARGV[1])

for i = 2, #ARGV - 1, 2 do
  local ip = ARGV[i]
  local ends = now + tonumber(ARGV[i + 1]) * 1000
  local old = redis.call('ZSCORE', KEYS[1], ip)
  if (not old) or tonumber(old) < ends then
    redis.call('ZADD', KEYS[1], int(ends), ip)
  end
  redis.call('ZADD', KEYS[2], int(now), ip)
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. int(now - span_ms * 1000))
-- The bans go when the last one ends, the log one span after the last ban.
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  local ttl = math.ceil((tonumber(last[2]) - now) / 1000) + 1
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
redis.call('PEXPIRE', KEYS[2], span_ms)
return math.floor((#ARGV - 1) / 2)
