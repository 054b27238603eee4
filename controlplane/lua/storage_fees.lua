-- Charges an org's vector-store storage of one UTC day, once, in one round trip.
--
-- KEYS[1] the org's storage-fee key of the day (holding the caller's claim token),
-- KEYS[2] its usage hash of the day, KEYS[3..] the org's spend counters (spend_ttls says
-- each TTL).
-- ARGV[1] is a JSON object:
--   token: the claim the caller took (SET NX PX) before fetching the org's stores;
--   cost: micro-USD to charge (0 marks the day charged without a charge);
--   field: the usage field the cost goes to (`<key id>\n<model>\ncost`);
--   charged_ttl: seconds the `charged` mark is kept (past the day, when nobody asks again);
--   usage_ttl: seconds the usage hash is kept;
--   spend_ttls: [seconds or -1 (kept), ...] of the spend counters.
-- Answers 1 when it charged, 0 when the claim is no longer the caller's (it expired, and
-- another control plane may hold it or have charged): then nothing is written.
local spec = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[1]) ~= spec.token then
  return 0
end
redis.call('SET', KEYS[1], 'charged', 'EX', spec.charged_ttl)
if spec.cost > 0 then
  redis.call('HINCRBY', KEYS[2], spec.field, spec.cost)
  redis.call('EXPIRE', KEYS[2], spec.usage_ttl)
  for i, ttl in ipairs(spec.spend_ttls) do
    local name = KEYS[2 + i]
    redis.call('INCRBY', name, spec.cost)
    if ttl > 0 then
      redis.call('EXPIRE', name, ttl)
    end
  end
end
return 1
