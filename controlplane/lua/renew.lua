-- Follows the algorithms (controlplane/limit_algorithms/): renews one request's
-- concurrency slots. KEYS are the in-flight sets it may hold a slot in (the key's, the
-- org's); ARGV[1] its request id, ARGV[2] the lease (ms). Answers 1 when it held a slot in
-- any of them, else 0.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local renewed = 0
for _, name in ipairs(KEYS) do
  if algorithms.slots.renew(name, tonumber(ARGV[2]), now, ARGV[1]) then
    renewed = 1
  end
end
return renewed
