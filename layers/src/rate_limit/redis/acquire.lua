-- One rate-limit decision, atomically, in one round trip (see script.rs).
--
-- KEYS[1]  sorted set of the key's open connections: member id -> lease deadline
--          (microseconds on Redis' clock)
-- KEYS[2]  the key's GCRA theoretical arrival time (microseconds on Redis' clock), a string
-- ARGV[1]  max open connections, or -1 for no limit
-- ARGV[2]  emission interval T in microseconds, or -1 for no rate
-- ARGV[3]  burst tolerance (max - 1) * T in microseconds
-- ARGV[4]  member id to add when admitted under a concurrency limit
-- ARGV[5]  lease in milliseconds
--
-- Returns {0}: admitted; {1}: refused, the key has max open connections; {2, wait}: refused,
-- the key's budget is spent for `wait` microseconds more. A refusal writes nothing but the
-- removal of expired leases.
--
-- Runs after redis_support/clock.lua, which sets `now` (Redis' time in microseconds) and `int`.

local max = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[5])

if max >= 0 then
  -- Connections of servers that stopped renewing (crashed, cut off) stop counting here.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
  if redis.call('ZCARD', KEYS[1]) >= max then
    return {1}
  end
end

-- The GCRA step of Rate::admit: admitted when max(TAT, now) - now <= tolerance, and then the
-- TAT moves to max(TAT, now) + T.
local tat = nil
if interval >= 0 then
  local stored = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  local base = math.max(stored, now)
  local ahead = base - now
  local tolerance = tonumber(ARGV[3])
  if ahead > tolerance then
    return {2, ahead - tolerance}
  end
  tat = base + interval
end

if max >= 0 then
  redis.call('ZADD', KEYS[1], int(now + lease_ms * 1000), ARGV[4])
  -- The set lives as long as its longest lease; servers may use different leases.
  if redis.call('PTTL', KEYS[1]) < lease_ms then
    redis.call('PEXPIRE', KEYS[1], lease_ms)
  end
end
if tat ~= nil then
  -- The TAT means something only while it is ahead of the clock: then it goes by itself.
  local ttl = math.ceil((tat - now) / 1000)
  if ttl > 0 then
    redis.call('SET', KEYS[2], int(tat), 'PX', int(ttl))
  end
end
return {0}
