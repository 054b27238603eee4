-- What a response showed, recorded for the org in one round trip.
--
-- KEYS[1] the org's objects, KEYS[2] its assistant models, then one key per run (its
-- "tokens counted" marker), one per token counter, and one per in-flight set.
-- ARGV[1] is a JSON object:
--   objects: [[id, kind, model], ...] created or modified (model '' unless an assistant);
--   deleted: [id, ...];
--   runs: [tokens, ...], one per marker: a run's tokens count once, when its marker is set;
--   token_counters: [{limit, period}, ...] the GCRA states the counted tokens go to;
--   request_id, slots: when slots > 0, the request's slot in that many in-flight sets is
--     released.
local spec = cjson.decode(ARGV[1])
local DAY_MS = 86400000
for _, object in ipairs(spec.objects) do
  redis.call('HSET', KEYS[1], object[1], object[2])
  if object[3] ~= '' then
    redis.call('HSET', KEYS[2], object[1], object[3])
  end
end
for _, id in ipairs(spec.deleted) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end

local next_key = 3
local tokens = 0
for _, run_tokens in ipairs(spec.runs) do
  if redis.call('SET', KEYS[next_key], '1', 'NX', 'PX', DAY_MS) then
    tokens = tokens + run_tokens
  end
  next_key = next_key + 1
end
if tokens > 0 then
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
  for i, counter in ipairs(spec.token_counters) do
    local name = KEYS[next_key + i - 1]
    local tat = math.max(tonumber(redis.call('GET', name) or '0'), now)
    tat = tat + tokens * counter.period / counter.limit
    redis.call('SET', name, string.format('%.3f', tat), 'PX', math.max(math.ceil(tat - now), 1))
  end
end
next_key = next_key + #spec.token_counters
for i = 1, spec.slots do
  redis.call('ZREM', KEYS[next_key + i - 1], spec.request_id)
end
return 1
