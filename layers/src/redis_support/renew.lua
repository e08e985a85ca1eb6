-- Renew the leases of one server's open connections under one key (see release.rs).
--
-- KEYS[1]  sorted set of the key's open connections: member id -> lease deadline (microseconds)
-- ARGV[1]  lease in milliseconds
-- ARGV[2..] member ids
--
-- A member that is gone (its lease ran out while Redis was unreachable, or Redis restarted
-- empty) is added back: the connection is still open. Returns how many members were renewed.
--
-- Runs after redis_support/clock.lua, which sets `now` (Redis' time in microseconds) and `int`.

local lease_ms = tonumber(ARGV[1])
local deadline = string.format('%.0f', now + lease_ms * 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], deadline, ARGV[i])
end
if redis.call('PTTL', KEYS[1]) < lease_ms then
  redis.call('PEXPIRE', KEYS[1], lease_ms)
end
return #ARGV - 1
