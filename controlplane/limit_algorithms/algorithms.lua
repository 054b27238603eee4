-- The counting algorithms of the rate-limit kinds (controlplane/limit_kinds.py, Algorithm),
-- one file each, by name in `algorithms`. Each counter is {algorithm, limit, period, shadow}
-- on one KEY, and each algorithm has:
--   check(name, counter, now): its answer {allowed, remaining, reset, retry} (ms), and what
--     take needs, counting nothing;
--   take(name, counter, now, state, request_id): counts the request, once every counter of
--     the request allowed it.
local algorithms = {}
-- GCRA's sums are floats: this keeps a whole number of intervals whole.
local EPSILON = 1e-6
