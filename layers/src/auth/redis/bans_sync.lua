-- Read the bans in force (see ban_sync.rs): all of them, or only those written since the
-- reader's last read while the log still covers it.
--
-- KEYS[1]  sorted set of bans in force: address -> when the ban ends (microseconds on Redis'
--          clock)
-- KEYS[2]  sorted set of recent bans: address -> when it was banned (microseconds)
-- ARGV[1]  the reader's cursor: Redis' time at its last read (microseconds), or -1
-- ARGV[2]  log span in milliseconds
--
-- Returns {now, full, address, remaining, address, remaining, ...}: Redis' time (the next
-- cursor), 1 if every ban is listed or 0 if only those written since the cursor, and each
-- ban with the microseconds it has left.
--
-- Runs after redis_support/clock.lua, which sets `now` (Redis' time in microseconds) and `int`.

local cursor = tonumber(ARGV[1])
local span_us = tonumber(ARGV[2]) * 1000

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
local reply = {int(now)}
if cursor < 0 or cursor < now - span_us then
  -- The log may have lost entries since the cursor: read everything.
  reply[2] = '1'
  local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    reply[#reply + 1] = all[i]
    reply[#reply + 1] = int(tonumber(all[i + 1]) - now)
  end
else
  reply[2] = '0'
  -- Inclusive: a ban written in the microsecond of the last read is read again, not lost.
  local ips = redis.call('ZRANGEBYSCORE', KEYS[2], int(cursor), '+inf')
  for _, ip in ipairs(ips) do
    local ends = redis.call('ZSCORE', KEYS[1], ip)
    if ends then
      reply[#reply + 1] = ip
      reply[#reply + 1] = int(tonumber(ends) - now)
    end
  end
end
return reply
