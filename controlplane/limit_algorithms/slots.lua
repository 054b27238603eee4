-- Requests in flight: the KEY is a sorted set of request ids by start time (ms), each
-- dropped after `period` if its release (lua/record.lua) never came.
algorithms.slots = {
  check = function(name, counter, now)
    redis.call('ZREMRANGEBYSCORE', name, '-inf', now - counter.period)
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
}
