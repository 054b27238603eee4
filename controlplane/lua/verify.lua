-- The part of every decision that only reads. Run alone (as verify.lua, flagged
-- no-writes so Redis allows it under OOM or on a replica) it confirms a denial, or lets a
-- request through when the counters cannot be written; check.lua continues it.
--
-- KEYS[1] the key's record, KEYS[2] the org's record, KEYS[3] the org's objects,
-- KEYS[4] the org's object models (assistants' and runs'). ARGV[1] is a JSON object:
--   key_digest, org_digest: SHA-1 of the records the caller decided with;
--   refs: [[id, kind], ...] objects the org must own;
--   model_object, model: when model_object (an assistant or run id) is not '', the model
--     the caller checked for it.
-- Answers a JSON object whose `outcome` is 'gone', 'stale' (with both records),
-- 'not_owned' (with the ref's 0-based index) or 'model' (with the object's model, ''
-- when unknown); check.lua goes on past these checks.
local spec = cjson.decode(ARGV[1])
local key_json = redis.call('GET', KEYS[1])
local org_json = redis.call('GET', KEYS[2])
if not key_json or not org_json then
  return cjson.encode({outcome = 'gone'})
end
if redis.sha1hex(key_json) ~= spec.key_digest or redis.sha1hex(org_json) ~= spec.org_digest then
  return cjson.encode({outcome = 'stale', key = key_json, org = org_json})
end
for i, ref in ipairs(spec.refs) do
  if redis.call('HGET', KEYS[3], ref[1]) ~= ref[2] then
    return cjson.encode({outcome = 'not_owned', index = i - 1})
  end
end
if spec.model_object ~= '' then
  local model = redis.call('HGET', KEYS[4], spec.model_object) or ''
  if model ~= spec.model or model == '' then
    return cjson.encode({outcome = 'model', model = model})
  end
end
