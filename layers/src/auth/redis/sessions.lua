-- Count one more session for a user unless it has `max` open, atomically (see
-- user_sessions.rs).
--
-- KEYS[1]  sorted set of the user's open sessions: member id -> lease deadline
--          (microseconds on Redis' clock)
-- ARGV[1]  most sessions the user may have open (at least 1)
-- ARGV[2]  member id to add
-- ARGV[3]  lease in milliseconds
--
-- Returns 1: counted (the member was added); 0: the user has `max` open, nothing added.
--
-- Runs after redis_support/clock.lua, which sets `now` (Redis' time in microseconds) and `int`.

local lease_ms = tonumber(ARGV[3])

-- Sessions of servers that stopped renewing (crashed, cut off) stop counting here.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], int(now + lease_ms * 1000), ARGV[2])
-- The set lives as long as its longest lease; servers may use different leases.
if redis.call('PTTL', KEYS[1]) < lease_ms then
  redis.call('PEXPIRE', KEYS[1], lease_ms)
end
return 1
