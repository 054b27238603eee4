-- Follows verify.lua: budgets, then every rate and concurrency limit of the request at
-- once. Either every counter that allows the request moves or, when an enforced limit
-- refuses it, none do.
--
-- KEYS[5..7] are the org's reservations (lua/reservations.lua: expiries, records, sums).
-- More of ARGV[1]:
--   request_id: the member a concurrency slot is held by;
--   budgets: [{limit, owner}, ...], limit in micro-USD and owner `org` or `key:<id>`, one
--     per KEYS[8...] spend counter;
--   reservation (a request that starts model work, under a budget, of a priced model):
--     {id, amount, key, ttl, resumes}: held when the request is allowed, if it fits in every
--     budget besides the spend and the reservations outstanding; with `resumes`, id is a
--     run's, whose hash is then the last KEY;
--   usage: {key_id, model, model_object, ttl, separator}: an allowed request counts once in
--     the usage hash (the KEY after the counters'), under `model`, else the model remembered for
--     `model_object` (the run's assistant, the run tool outputs go to), else ''; its field
--     joins key id, model and counter with `separator` (controlplane/usage.py);
--   counters: [{algorithm, limit, period, shadow}, ...], one per following KEY, counted by
--     the algorithms of controlplane/limit_algorithms/ (prepended to this script).
-- Answers `outcome` 'budget' (with the budget's index and the spend), 'reservation' (a
-- budget, unspent, that cannot hold the reservation: with its index, the spend and what is
-- reserved), 'limited' or 'ok', the last two with `counters`: per counter {allowed,
-- remaining, reset, retry} in ms.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000

local held = {expiries = KEYS[5], records = KEYS[6], sums = KEYS[7]}
local reservation = spec.reservation
if reservation and reservation.resumes then
  local run = KEYS[#KEYS]
  -- A run not created through the gateway is charged to nobody; one charged costs no more.
  if redis.call('HEXISTS', run, 'key') == 0 or redis.call('HEXISTS', run, 'charge') == 1 then
    reservation = nil
  end
end
local adds = 0
if reservation then
  reservations.expire(held, now)
  adds = reservations.adds(held, reservation)
end
local next_key = 8
for i, budget in ipairs(spec.budgets) do
  local spent = tonumber(redis.call('GET', KEYS[next_key]) or '0')
  if spent >= budget.limit then
    return cjson.encode({outcome = 'budget', index = i - 1, spent = spent})
  end
  if adds > 0 then
    local reserved = reservations.reserved(held, budget.owner)
    if spent + reserved + adds > budget.limit then
      return cjson.encode({outcome = 'reservation', index = i - 1, spent = spent, reserved = reserved})
    end
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
if reservation then
  reservations.hold(held, reservation, now)
end
return cjson.encode({outcome = 'ok', counters = results})
