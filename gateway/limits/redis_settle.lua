-- One settlement: free the in-flight slot, turn the tpm reservation into the real figure
-- (counted in the current second), and add the tokens to the day and month totals.
-- KEYS: 1 tokens window, 2 in-flight leases, 3 day totals, 4 month totals
-- ARGV: 1 ticket ('' if none), 2 reserved tokens, 3 reservation second, 4 used tokens,
--       5 now (s), 6 count in the tokens window (1/0), 7 window ttl (s),
--       8 day totals ttl (s), 9 month totals ttl (s)
-- Returns {day tokens, day requests, month tokens, month requests}

if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
local reserved = tonumber(ARGV[2])
if reserved > 0 then
  local held = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or 0)
  if held > reserved then
    redis.call('HINCRBY', KEYS[1], ARGV[3], -reserved)
  elseif held > 0 then
    redis.call('HDEL', KEYS[1], ARGV[3])
  end
end
local used = tonumber(ARGV[4])
if used > 0 and ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[1], ARGV[5], used)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
end
local day = redis.call('HINCRBY', KEYS[3], 'tokens', used)
local day_requests = redis.call('HINCRBY', KEYS[3], 'requests', 1)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
local month = redis.call('HINCRBY', KEYS[4], 'tokens', used)
local month_requests = redis.call('HINCRBY', KEYS[4], 'requests', 1)
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[9]))
return {day, day_requests, month, month_requests}
