-- Budget reservations of one org (controlplane/reservations.py), which check.lua and
-- record.lua are run after. `names` holds the three keys:
--   expiries: a sorted set of reservation ids by when each lapses (ms);
--   records: a hash, id -> {key, amount}: the key it counts for, in micro-USD;
--   sums: a hash of the running sums, `org` and `key:<id>` -> micro-USD reserved now,
-- so a budget check reads one sum instead of every reservation.
local reservations = {}

function reservations.release(names, id)
  local stored = redis.call('HGET', names.records, id)
  if not stored then
    return
  end
  local record = cjson.decode(stored)
  redis.call('HDEL', names.records, id)
  redis.call('ZREM', names.expiries, id)
  redis.call('HINCRBY', names.sums, 'org', -record.amount)
  redis.call('HINCRBY', names.sums, 'key:' .. record.key, -record.amount)
end

-- Lazily, a bounded number per call: any left over lapse on the next ones, and until then
-- only count a little too much.
function reservations.expire(names, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', names.expiries, '-inf', now, 'LIMIT', 0, 100)) do
    reservations.release(names, id)
  end
end

function reservations.reserved(names, owner)
  return tonumber(redis.call('HGET', names.sums, owner) or '0')
end

-- What holding `reservation` adds: nothing when its id already holds one (a resumed run's
-- reservation covers the whole run).
function reservations.adds(names, reservation)
  if redis.call('HEXISTS', names.records, reservation.id) == 1 then
    return 0
  end
  return reservation.amount
end

function reservations.hold(names, reservation, now)
  local amount = reservations.adds(names, reservation)
  if amount > 0 then
    redis.call('HSET', names.records, reservation.id,
      cjson.encode({key = reservation.key, amount = amount}))
    redis.call('HINCRBY', names.sums, 'org', amount)
    redis.call('HINCRBY', names.sums, 'key:' .. reservation.key, amount)
  end
  redis.call('ZADD', names.expiries, now + reservation.ttl, reservation.id)
  -- Each hold lapses last, so the keys outlive every reservation they hold.
  for _, name in ipairs({names.expiries, names.records, names.sums}) do
    redis.call('PEXPIRE', name, reservation.ttl)
  end
end

-- A request's reservation becomes that of the run it created, settled when the run is.
function reservations.move(names, from, to)
  local stored = redis.call('HGET', names.records, from)
  local lapses = redis.call('ZSCORE', names.expiries, from)
  if not stored or redis.call('HEXISTS', names.records, to) == 1 then
    return
  end
  redis.call('HSET', names.records, to, stored)
  redis.call('ZADD', names.expiries, lapses, to)
  redis.call('HDEL', names.records, from)
  redis.call('ZREM', names.expiries, from)
end
