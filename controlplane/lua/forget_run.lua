-- A run the sweeper gives up (ended without usage, gone upstream, too old): it leaves the
-- org's pending runs, and its budget reservation (lua/reservations.lua, run before this)
-- is released, as it will never be charged.
-- KEYS[1] the org's pending runs, KEYS[2..4] its reservations; ARGV[1] the run id.
redis.call('ZREM', KEYS[1], ARGV[1])
reservations.release({expiries = KEYS[2], records = KEYS[3], sums = KEYS[4]}, ARGV[1])
