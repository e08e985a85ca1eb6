-- The opening of every script of this crate (see redis_support/mod.rs, `script`): what a
-- script needs to write on Redis' own clock.

-- Before Redis 5 a script must ask for effects replication to write after reading TIME.
if redis.replicate_commands then
  redis.replicate_commands()
end

-- Integers as exact decimal strings: Redis would print large numbers in exponent form.
local function int(x)
  return string.format('%.0f', x)
end

-- One clock for every server: Redis' own. Microseconds since 1970 fit a double exactly.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

