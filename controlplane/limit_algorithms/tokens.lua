-- Tokens per window, by GCRA like rate.lua, but the tokens of runs are added by Record
-- (lua/record.lua) when their runs end, so a request only reads the state: it passes while
-- any token is left.
algorithms.tokens = {
  check = function(name, counter, now)
    local interval = counter.period / counter.limit
    local held = math.max(tonumber(redis.call('GET', name) or '0'), now) - now
    local remaining = math.max(math.floor((counter.period - held) / interval + EPSILON), 0)
    local result = {
      allowed = remaining >= 1,
      remaining = remaining,
      reset = held,
      retry = held - counter.period + interval,
    }
    return result, nil
  end,
  take = function() end,
}
