-- Requests in flight: the KEY is a sorted set of request ids by their holder's last
-- renewal (ms): a lease of `period`, which lua/renew.lua renews while the request is in
-- flight and lua/record.lua releases when it ends. A member whose lease ran out does not
-- count, and is dropped.
local function drop_expired(name, period, now)
  redis.call('ZREMRANGEBYSCORE', name, '-inf', now - period)
end
algorithms.slots = {
  check = function(name, counter, now)
    drop_expired(name, counter.period, now)
    local held = redis.call('ZCARD', name)
    local result = {
      allowed = held < counter.limit,
      remaining = math.max(counter.limit - held - 1, 0),
      reset = 0,
      retry = 1000,
    }
    return result, nil
  end,
  take = function(name, counter, now, _, request_id)
    redis.call('ZADD', name, now, request_id)
    redis.call('PEXPIRE', name, counter.period)
  end,
  -- Starts the request's lease afresh if it still holds its slot (a slot released, or
  -- whose lease ran out, is not taken again); whether it did.
  renew = function(name, period, now, request_id)
    drop_expired(name, period, now)
    if not redis.call('ZSCORE', name, request_id) then
      return false
    end
    redis.call('ZADD', name, 'XX', now, request_id)
    redis.call('PEXPIRE', name, period)
    return true
  end,
}
