-- What a response (or the sweeper) showed, recorded for the org in one round trip.
--
-- KEYS[1] the org's objects, KEYS[2] its object models, KEYS[3] its pending runs,
-- KEYS[4] its usage hash of the day, KEYS[5] the Record's once marker; then, in this order:
--   one run hash per object of kind 'run';
--   per run charged: its run hash, then its 6 spend counters (spend_ttls says each TTL);
--   per step: its once marker, its thread's code_interpreter session key, 6 spend counters;
--   one key per token counter; one per in-flight set.
-- ARGV[1] is a JSON object:
--   key_id: the key whose request showed all this;
--   objects: [[id, kind, model, thread], ...] created or modified (model '' unless an
--     assistant or run, thread '' unless a run or message);
--   deleted: [id, ...];
--   runs: [RunCharge, ...] (controlplane/pricing.py, field for field): a run the org
--     created through the gateway is charged once, to `key_id` (its creator): cost_micros
--     to the spend counters, tokens to the usage hash and the token counters;
--   steps: [StepCharge, ...] likewise: a step's tool calls are charged once; a
--     code_interpreter session once per thread and hour;
--   spend_ttls: [seconds or -1 (kept), ...] of the 6 spend counters;
--   run_ttl, usage_ttl: how long run hashes and step markers (ms), and usage hashes
--     (seconds), are kept;
--   usage_separator: what joins a usage field's key id, model and counter
--     (controlplane/usage.py);
--   token_counters: [{limit, period}, ...] the GCRA states the newly charged tokens go to;
--   request_id, slots: when slots > 0, the request's slot in that many in-flight sets is
--     released;
--   once, once_ttl: when once, the objects and deletions are applied only if the marker
--     was not set yet (it is set for once_ttl ms): a Record sent again after its answer
--     was lost must not bring back an object deleted since, or an assistant's old model.
--     What else it does is once by its own marks (run charges, step charges, releases);
--   finished: the request is over (its reservation, if it created no run, is released).
-- The last three KEYS are the org's reservations (lua/reservations.lua, run before this).
-- Answers {charges = [charge JSON, ...] one per run as first charged, new = [bool, ...]
-- whether this call charged it, steps = [[file_search, code_interpreter] micro-USD newly
-- charged per step, ...]}.
local spec = cjson.decode(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local usage_key = KEYS[4]

local function count(key_id, model, counter, amount)
  if amount ~= 0 then
    local separator = spec.usage_separator
    redis.call('HINCRBY', usage_key, key_id .. separator .. model .. separator .. counter, amount)
  end
end

local function spend(first, amount)
  if amount <= 0 then
    return
  end
  for i, ttl in ipairs(spec.spend_ttls) do
    local name = KEYS[first + i - 1]
    redis.call('INCRBY', name, amount)
    if ttl > 0 then
      redis.call('EXPIRE', name, ttl)
    end
  end
end

local first_time = not spec.once or redis.call('SET', KEYS[5], '1', 'NX', 'PX', spec.once_ttl)
local next_key = 6
for _, object in ipairs(spec.objects) do
  local run_key = nil
  if object[2] == 'run' then
    run_key = KEYS[next_key]
    next_key = next_key + 1
  end
  if first_time then
    redis.call('HSET', KEYS[1], object[1], object[2])
    if object[3] ~= '' then
      redis.call('HSET', KEYS[2], object[1], object[3])
    end
    if run_key and redis.call('HSETNX', run_key, 'key', spec.key_id) == 1 then
      redis.call('HSET', run_key, 'thread', object[4])
      redis.call('PEXPIRE', run_key, spec.run_ttl)
      if redis.call('HEXISTS', run_key, 'charge') == 0 then
        redis.call('ZADD', KEYS[3], 'NX', now, object[1])
      end
    end
  end
end
if first_time then
  for _, id in ipairs(spec.deleted) do
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  end
end

local charges, new, tokens = {}, {}, 0
for i, run in ipairs(spec.runs) do
  local run_key = KEYS[next_key]
  local stored = redis.call('HGET', run_key, 'charge')
  if stored then
    charges[i], new[i] = stored, false
  else
    local charge = cjson.encode({
      model = run.model, cost = run.cost_micros, priced = run.priced, key = run.key_id,
      prompt = run.prompt_tokens, cached = run.cached_tokens, completion = run.completion_tokens,
    })
    redis.call('HSET', run_key, 'charge', charge)
    redis.call('PEXPIRE', run_key, spec.run_ttl)
    redis.call('ZREM', KEYS[3], run.run_id)
    spend(next_key + 1, run.cost_micros)
    count(run.key_id, run.model, 'input', run.prompt_tokens)
    count(run.key_id, run.model, 'cached', run.cached_tokens)
    count(run.key_id, run.model, 'output', run.completion_tokens)
    count(run.key_id, run.model, 'runs', 1)
    count(run.key_id, run.model, 'cost', run.cost_micros)
    tokens = tokens + run.total_tokens
    charges[i], new[i] = charge, true
  end
  next_key = next_key + 1 + #spec.spend_ttls
end

local steps = {}
for i, step in ipairs(spec.steps) do
  local file_search, code = 0, 0
  if redis.call('SET', KEYS[next_key], '1', 'NX', 'PX', spec.run_ttl) then
    if step.file_search_calls > 0 then
      file_search = step.file_search_micros
      count(step.key_id, 'file_search', 'cost', file_search)
    end
    if step.code_interpreter and redis.call('SET', KEYS[next_key + 1], '1', 'NX', 'EX', 3600) then
      code = step.code_interpreter_micros
      count(step.key_id, 'code_interpreter', 'cost', code)
    end
    spend(next_key + 2, file_search + code)
  end
  steps[i] = {file_search, code}
  next_key = next_key + 2 + #spec.spend_ttls
end
if redis.call('EXISTS', usage_key) == 1 then
  redis.call('EXPIRE', usage_key, spec.usage_ttl)
end

if tokens > 0 then
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

-- Budget reservations (lua/reservations.lua), on the last three KEYS: this request's becomes
-- the run its response created; a run charged now settles its own, as its cost is in the
-- spend from now on; a request over without a run gives its own back.
local held = {expiries = KEYS[#KEYS - 2], records = KEYS[#KEYS - 1], sums = KEYS[#KEYS]}
for _, object in ipairs(spec.objects) do
  if object[2] == 'run' then
    reservations.move(held, spec.request_id, object[1])
  end
end
for _, run in ipairs(spec.runs) do
  reservations.release(held, run.run_id)
end
if spec.finished then
  reservations.release(held, spec.request_id)
end

return cjson.encode({charges = charges, new = new, steps = steps})
