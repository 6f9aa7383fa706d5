-- One admission, atomically: quotas, rpm and tpm windows, concurrency. The request is
-- counted only if every check passes, so a refused request costs nothing.
-- KEYS: 1 requests window, 2 tokens window (hashes: epoch second -> units),
--       3 in-flight leases (zset: ticket -> lease deadline in ms), 4 day totals, 5 month totals
-- ARGV[1]: space-separated integers: now (ms), rpm, tpm, max_concurrency, tokens_per_day,
--          tokens_per_month (-1: not limited), prompt estimate, lease (ms), window ttl (s)
-- ARGV[2]: this request's ticket
-- (One string each way: redis-py spends more CPU per argument and reply element than Redis
-- spends running the script.)
-- Returns "verdict requests tokens in_flight day_tokens month_tokens oldest_request_second
--          oldest_token_second freed_by_second" (-1: none / never)
-- verdict: 0 admitted, 1 day quota, 2 month quota, 3 rpm, 4 tpm, 5 concurrency

local arg = {}
for value in string.gmatch(ARGV[1], '%S+') do arg[#arg + 1] = tonumber(value) end
local now_ms, rpm, tpm, max_conc, per_day, per_month, estimate, lease_ms, window_ttl =
  unpack(arg)
local ticket = ARGV[2]
local sec = math.floor(now_ms / 1000)

-- Sum of the buckets still inside the 60 s window; drops the ones that slid out.
local function window(key)
  local flat = redis.call('HGETALL', key)
  local total, oldest, live, dead = 0, -1, {}, {}
  for i = 1, #flat, 2 do
    local s, n = tonumber(flat[i]), tonumber(flat[i + 1])
    if s <= sec - 60 then
      dead[#dead + 1] = flat[i]
    else
      total = total + n
      live[#live + 1] = {s, n}
      if n > 0 and (oldest < 0 or s < oldest) then oldest = s end
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  return total, oldest, live
end

-- The second by which `units` counted units will have left the window (-1: never).
local function freed_by(live, units)
  table.sort(live, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, bucket in ipairs(live) do
    freed = freed + bucket[2]
    if freed >= units then return bucket[1] + 60 end
  end
  return -1
end

local day = tonumber(redis.call('HGET', KEYS[4], 'tokens') or 0)
local month = tonumber(redis.call('HGET', KEYS[5], 'tokens') or 0)
local requests, req_oldest, req_live = 0, -1, {}
if rpm >= 0 then requests, req_oldest, req_live = window(KEYS[1]) end
local tokens, tok_oldest, tok_live = 0, -1, {}
if tpm >= 0 then tokens, tok_oldest, tok_live = window(KEYS[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)  -- leases of crashed workers run out
local in_flight = redis.call('ZCARD', KEYS[3])

local verdict, free = 0, -1
if per_month >= 0 and month >= per_month then
  verdict = 2
elseif per_day >= 0 and day >= per_day then
  verdict = 1
elseif rpm >= 0 and requests >= rpm then
  verdict, free = 3, freed_by(req_live, requests + 1 - rpm)
elseif tpm >= 0 and tokens + estimate > tpm then
  verdict, free = 4, freed_by(tok_live, tokens + estimate - tpm)
elseif max_conc >= 0 and in_flight >= max_conc then
  verdict = 5
end

if verdict == 0 then
  if rpm >= 0 then
    redis.call('HINCRBY', KEYS[1], sec, 1)
    redis.call('EXPIRE', KEYS[1], window_ttl)
    requests = requests + 1
    if req_oldest < 0 then req_oldest = sec end
  end
  if tpm >= 0 and estimate > 0 then
    redis.call('HINCRBY', KEYS[2], sec, estimate)
    redis.call('EXPIRE', KEYS[2], window_ttl)
    tokens = tokens + estimate
    if tok_oldest < 0 then tok_oldest = sec end
  end
  redis.call('ZADD', KEYS[3], now_ms + lease_ms, ticket)
  redis.call('PEXPIRE', KEYS[3], lease_ms)
  in_flight = in_flight + 1
end
return string.format('%d %d %d %d %d %d %d %d %d', verdict, requests, tokens, in_flight,
  day, month, req_oldest, tok_oldest, free)
