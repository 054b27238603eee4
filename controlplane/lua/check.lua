-- Follows verify.lua: budgets, then every rate and concurrency limit of the request at
-- once. Either all of the request's counters move or, when an enforced limit refuses it,
-- none do.
--
-- More of ARGV[1]:
--   request_id: the member a concurrency slot is held by;
--   budgets: [limit, ...] in micro-USD, one per KEYS[5...] spend counter;
--   usage: {key_id, model, model_object, ttl}: an allowed request counts once in the usage
--     hash (the last KEY), under `model`, else the model remembered for `model_object` (the
--     run's assistant, the run tool outputs go to), else '';
--   counters: [{algorithm, limit, period, shadow}, ...], one per following KEY (the
--     algorithms of controlplane/limit_kinds.py):
--     'rate'   a GCRA state (the theoretical arrival time, ms) that this request adds 1 to;
--     'tokens' a GCRA state that Record adds run tokens to; passes while any token is left;
--     'slots'  a sorted set of requests in flight, each dropped after `period` ms if its
--              release never came.
-- Answers `outcome` 'budget' (with the budget's index and the spend), 'limited' or 'ok',
-- the last two with `counters`: per counter {allowed, remaining, reset, retry} in ms.
local EPSILON = 1e-6
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

local results, refused, arrivals = {}, false, {}
for i, counter in ipairs(spec.counters) do
  local name = KEYS[next_key + i - 1]
  local result
  if counter.algorithm == 'slots' then
    redis.call('ZREMRANGEBYSCORE', name, '-inf', now - counter.period)
    local held = redis.call('ZCARD', name)
    result = {
      allowed = held < counter.limit,
      remaining = math.max(counter.limit - held - 1, 0),
      reset = 0,
      retry = 1000,
    }
  else
    local interval = counter.period / counter.limit
    local tat = math.max(tonumber(redis.call('GET', name) or '0'), now)
    if counter.algorithm == 'rate' then
      local after = tat + interval - now
      local allowed = after <= counter.period + EPSILON
      arrivals[i] = tat + interval
      result = {
        allowed = allowed,
        remaining = allowed and math.floor((counter.period - after) / interval + EPSILON) or 0,
        reset = allowed and after or (tat - now),
        retry = after - counter.period,
      }
    else
      local held = tat - now
      local remaining = math.max(math.floor((counter.period - held) / interval + EPSILON), 0)
      result = {
        allowed = remaining >= 1,
        remaining = remaining,
        reset = held,
        retry = held - counter.period + interval,
      }
    end
  end
  if not result.allowed and not counter.shadow then
    refused = true
  end
  results[i] = result
end
if refused then
  return cjson.encode({outcome = 'limited', counters = results})
end

for i, counter in ipairs(spec.counters) do
  local name = KEYS[next_key + i - 1]
  if counter.algorithm == 'slots' then
    redis.call('ZADD', name, now, spec.request_id)
    redis.call('PEXPIRE', name, counter.period)
  elseif counter.algorithm == 'rate' then
    local ttl = math.max(math.ceil(arrivals[i] - now), 1)
    redis.call('SET', name, string.format('%.3f', arrivals[i]), 'PX', ttl)
  end
end
local usage = spec.usage
local model = usage.model
if model == '' and usage.model_object ~= '' then
  model = redis.call('HGET', KEYS[4], usage.model_object) or ''
end
local usage_key = KEYS[next_key + #spec.counters]
redis.call('HINCRBY', usage_key, usage.key_id .. '\n' .. model .. '\nrequests', 1)
redis.call('EXPIRE', usage_key, usage.ttl)
return cjson.encode({outcome = 'ok', counters = results})
