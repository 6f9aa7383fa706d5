-- One settlement: free the in-flight slot, turn the tpm reservation into the real figure
-- (counted in the current second), and add the tokens to the day and month totals.
-- KEYS: 1 tokens window, 2 in-flight leases, 3 day totals, 4 month totals
-- ARGV[1]: space-separated integers: reserved tokens, reservation second, used tokens,
--          now (s), count in the tokens window (1/0), window ttl (s), day totals ttl (s),
--          month totals ttl (s)
-- ARGV[2]: the request's ticket ('' if none)
-- Returns "day_tokens day_requests month_tokens month_requests"

local arg = {}
for value in string.gmatch(ARGV[1], '%S+') do arg[#arg + 1] = value end
local reserved, reserve_sec, used, now_sec = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4]
local count_tokens, window_ttl, day_ttl, month_ttl = arg[5], arg[6], arg[7], arg[8]

if ARGV[2] ~= '' then redis.call('ZREM', KEYS[2], ARGV[2]) end
if reserved > 0 then
  local held = tonumber(redis.call('HGET', KEYS[1], reserve_sec) or 0)
  if held > reserved then
    redis.call('HINCRBY', KEYS[1], reserve_sec, -reserved)
  elseif held > 0 then
    redis.call('HDEL', KEYS[1], reserve_sec)
  end
end
if used > 0 and count_tokens == '1' then
  redis.call('HINCRBY', KEYS[1], now_sec, used)
  redis.call('EXPIRE', KEYS[1], window_ttl)
end
local day = redis.call('HINCRBY', KEYS[3], 'tokens', used)
local day_requests = redis.call('HINCRBY', KEYS[3], 'requests', 1)
redis.call('EXPIRE', KEYS[3], day_ttl)
local month = redis.call('HINCRBY', KEYS[4], 'tokens', used)
local month_requests = redis.call('HINCRBY', KEYS[4], 'requests', 1)
redis.call('EXPIRE', KEYS[4], month_ttl)
return string.format('%d %d %d %d', day, day_requests, month, month_requests)
