-- Follows verify.lua: budgets, then every rate and concurrency limit of the request at
-- once. Either every counter that allows the request moves or, when an enforced limit
-- refuses it, none do.
--
-- More of ARGV[1]:
--   request_id: the member a concurrency slot is held by;
--   budgets: [limit, ...] in micro-USD, one per KEYS[5...] spend counter;
--   usage: {key_id, model, model_object, ttl, separator}: an allowed request counts once in
--     the usage hash (the last KEY), under `model`, else the model remembered for
--     `model_object` (the run's assistant, the run tool outputs go to), else ''; its field
--     joins key id, model and counter with `separator` (controlplane/usage.py);
--   counters: [{algorithm, limit, period, shadow}, ...], one per following KEY, counted by
--     the algorithms of controlplane/limit_algorithms/ (prepended to this script).
-- Answers `outcome` 'budget' (with the budget's index and the spend), 'limited' or 'ok',
-- the last two with `counters`: per counter {allowed, remaining, reset, retry} in ms.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000

local next_key = 5
for i, limit in ipairs(spec.budgets) do
  local spent = tonumber(redis.call('GET', KEYS[next_key]) or '0')
  if spent >= limit then
    return cjson.encode({outcome = 'budget', index = i - 1, spent = spent})
  end
  next_key = next_key + 1
end

local results, refused, states = {}, false, {}
for i, counter in ipairs(spec.counters) do
  local result, state = algorithms[counter.algorithm].check(KEYS[next_key + i - 1], counter, now)
  if not result.allowed and not counter.shadow then
    refused = true
  end
  results[i], states[i] = result, state
end
if refused then
  return cjson.encode({outcome = 'limited', counters = results})
end

-- A shadow counter over its limit does not take the request either, as its enforced twin
-- would have refused it uncounted: switching a limit to enforced changes only refusals.
for i, counter in ipairs(spec.counters) do
  if results[i].allowed then
    local name = KEYS[next_key + i - 1]
    algorithms[counter.algorithm].take(name, counter, now, states[i], spec.request_id)
  end
end
local usage = spec.usage
local model = usage.model
if model == '' and usage.model_object ~= '' then
  model = redis.call('HGET', KEYS[4], usage.model_object) or ''
end
local usage_key = KEYS[next_key + #spec.counters]
local separator = usage.separator
redis.call('HINCRBY', usage_key, usage.key_id .. separator .. model .. separator .. 'requests', 1)
redis.call('EXPIRE', usage_key, usage.ttl)
return cjson.encode({outcome = 'ok', counters = results})
