-- Requests per window, by GCRA: the KEY holds the theoretical arrival time (ms), which each
-- request moves on by period / limit, so a limit of N allows a burst of N and then one more
-- every period / N.
algorithms.rate = {
  check = function(name, counter, now)
    local interval = counter.period / counter.limit
    local tat = math.max(tonumber(redis.call('GET', name) or '0'), now)
    local after = tat + interval - now
    local allowed = after <= counter.period + EPSILON
    local result = {
      allowed = allowed,
      remaining = allowed and math.floor((counter.period - after) / interval + EPSILON) or 0,
      reset = allowed and after or (tat - now),
      retry = after - counter.period,
    }
    return result, tat + interval
  end,
  take = function(name, counter, now, arrival)
    local ttl = math.max(math.ceil(arrival - now), 1)
    redis.call('SET', name, string.format('%.3f', arrival), 'PX', ttl)
  end,
}
