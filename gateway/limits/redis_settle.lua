-- One settlement over every scope of a request: free its in-flight slots, turn the tpm
-- reservations into the real figure (counted in the current second), and add the tokens,
-- the request and the cost (micro-dollars) to the day and month totals.
-- KEYS: 4 per scope, in scope order: tokens window, in-flight leases, day totals, month totals
-- ARGV[1]: space-separated integers: reserved tokens, reservation second, used tokens,
--          cost (micro-dollars), now (s), window ttl (s), day totals ttl (s), month totals
--          ttl (s), then 1 per scope: 1 if it holds a slot and a tpm reservation to settle
--          (it was checked with tpm), 2 if it holds a slot only, 0 if it holds nothing
-- ARGV[2]: the request's ticket ('' if none)
-- Returns 6 integers per scope: day_tokens day_requests month_tokens month_requests
--         day_usd month_usd

local arg = {}
for value in string.gmatch(ARGV[1], '%S+') do arg[#arg + 1] = value end
local reserved, reserve_sec, used = tonumber(arg[1]), arg[2], tonumber(arg[3])
local cost, now_sec, window_ttl, day_ttl, month_ttl = tonumber(arg[4]), arg[5], arg[6], arg[7],
  arg[8]
local out = {}
for i = 1, #KEYS / 4 do
  local k = (i - 1) * 4
  local holds = arg[8 + i]
  if holds ~= '0' and ARGV[2] ~= '' then redis.call('ZREM', KEYS[k + 2], ARGV[2]) end
  if holds == '1' then
    if reserved > 0 then
      local held = tonumber(redis.call('HGET', KEYS[k + 1], reserve_sec) or 0)
      if held > reserved then
        redis.call('HINCRBY', KEYS[k + 1], reserve_sec, -reserved)
      elseif held > 0 then
        redis.call('HDEL', KEYS[k + 1], reserve_sec)
      end
    end
    if used > 0 then
      redis.call('HINCRBY', KEYS[k + 1], now_sec, used)
      redis.call('EXPIRE', KEYS[k + 1], window_ttl)
    end
  end
  local day = redis.call('HINCRBY', KEYS[k + 3], 'tokens', used)
  local day_requests = redis.call('HINCRBY', KEYS[k + 3], 'requests', 1)
  local day_usd = redis.call('HINCRBY', KEYS[k + 3], 'usd', cost)
  redis.call('EXPIRE', KEYS[k + 3], day_ttl)
  local month = redis.call('HINCRBY', KEYS[k + 4], 'tokens', used)
  local month_requests = redis.call('HINCRBY', KEYS[k + 4], 'requests', 1)
  local month_usd = redis.call('HINCRBY', KEYS[k + 4], 'usd', cost)
  redis.call('EXPIRE', KEYS[k + 4], month_ttl)
  out[#out + 1] = string.format('%d %d %d %d %d %d', day, day_requests, month, month_requests,
    day_usd, month_usd)
end
return table.concat(out, ' ')
