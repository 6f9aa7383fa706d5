-- One admission over every scope of a request (its key, its team, each ancestor),
-- atomically: token quotas, USD budgets, rpm and tpm windows, concurrency. The request is
-- counted only if every check of every scope passes, so a refused request costs nothing.
-- Shadow limits are checked after the enforced ones admitted it, against the same counters;
-- they refuse nothing: each one exceeded is returned and counted as a would-be refusal in the
-- scope's day and month totals (fields shadow:LIMIT).
-- KEYS: 5 per scope, in scope order: requests window, tokens window (hashes: epoch second
--       -> units), in-flight leases (zset: ticket -> lease deadline in ms), day totals,
--       month totals (hashes: tokens, requests, usd = micro-dollars)
-- ARGV[1]: space-separated integers: now (ms), prompt estimate, lease (ms), window ttl (s),
--          day totals ttl (s), month totals ttl (s), then 14 per scope: rpm, tpm,
--          max_concurrency, tokens_per_day, tokens_per_month, usd_per_day, usd_per_month
--          (micro-dollars) enforced, then the same 7 in shadow (-1: not limited)
-- ARGV[2]: this request's ticket
-- (One string each way: redis-py spends more CPU per argument and reply element than Redis
-- spends running the script.)
-- Returns "verdict scope freed_by_second" (scope: 1-based index of the refusing scope, 0 if
-- admitted), then 10 per scope: requests tokens in_flight day_tokens month_tokens day_usd
-- month_usd oldest_request_second oldest_token_second shadow (-1: none / never; shadow: the
-- bits 2^(verdict - 1) of the shadow limits it would refuse on, 0 if none or refused)
-- verdict: 0 admitted, 1 day quota, 2 month quota, 3 rpm, 4 tpm, 5 concurrency,
--          6 day budget, 7 month budget

local arg = {}
for value in string.gmatch(ARGV[1], '%S+') do arg[#arg + 1] = tonumber(value) end
local now_ms, estimate, lease_ms, window_ttl = arg[1], arg[2], arg[3], arg[4]
local day_ttl, month_ttl = arg[5], arg[6]
local HEAD, PER_SCOPE = 6, 14
local SHADOW_FIELDS = {'shadow:tokens_per_day', 'shadow:tokens_per_month', 'shadow:rpm',
  'shadow:tpm', 'shadow:max_concurrency', 'shadow:usd_per_day', 'shadow:usd_per_month'}
local ticket = ARGV[2]
local sec = math.floor(now_ms / 1000)
local scopes = #KEYS / 5

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

-- Every shadow limit of one scope the request would exceed, as bits 2^(verdict - 1).
local function shadow_bits(s, a)
  local bits = 0
  local rpm, tpm, max_conc = arg[a + 1], arg[a + 2], arg[a + 3]
  local per_day, per_month, usd_day, usd_month = arg[a + 4], arg[a + 5], arg[a + 6], arg[a + 7]
  if per_day >= 0 and s.day >= per_day then bits = bits + 1 end
  if per_month >= 0 and s.month >= per_month then bits = bits + 2 end
  if rpm >= 0 and s.requests >= rpm then bits = bits + 4 end
  if tpm >= 0 and s.tokens + estimate > tpm then bits = bits + 8 end
  if max_conc >= 0 and s.in_flight >= max_conc then bits = bits + 16 end
  if usd_day >= 0 and s.day_usd >= usd_day then bits = bits + 32 end
  if usd_month >= 0 and s.month_usd >= usd_month then bits = bits + 64 end
  return bits
end

local seen = {}
local verdict, refusing, free = 0, 0, -1
for i = 1, scopes do
  local k = (i - 1) * 5
  local a = HEAD + (i - 1) * PER_SCOPE
  local rpm, tpm, max_conc = arg[a + 1], arg[a + 2], arg[a + 3]
  local per_day, per_month, usd_day, usd_month = arg[a + 4], arg[a + 5], arg[a + 6], arg[a + 7]
  local day = redis.call('HMGET', KEYS[k + 4], 'tokens', 'usd')
  local month = redis.call('HMGET', KEYS[k + 5], 'tokens', 'usd')
  local s = {
    day = tonumber(day[1] or 0), day_usd = tonumber(day[2] or 0),
    month = tonumber(month[1] or 0), month_usd = tonumber(month[2] or 0),
    requests = 0, req_oldest = -1, tokens = 0, tok_oldest = -1,
  }
  local req_live, tok_live = {}, {}
  -- A shadow rpm or tpm reads (and below, counts in) the same window as an enforced one.
  if rpm >= 0 or arg[a + 8] >= 0 then
    s.requests, s.req_oldest, req_live = window(KEYS[k + 1])
  end
  if tpm >= 0 or arg[a + 9] >= 0 then
    s.tokens, s.tok_oldest, tok_live = window(KEYS[k + 2])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now_ms)  -- leases of crashed workers
  s.in_flight = redis.call('ZCARD', KEYS[k + 3])
  seen[i] = s
  if verdict == 0 then
    if per_month >= 0 and s.month >= per_month then
      verdict = 2
    elseif per_day >= 0 and s.day >= per_day then
      verdict = 1
    elseif usd_month >= 0 and s.month_usd >= usd_month then
      verdict = 7
    elseif usd_day >= 0 and s.day_usd >= usd_day then
      verdict = 6
    elseif rpm >= 0 and s.requests >= rpm then
      verdict, free = 3, freed_by(req_live, s.requests + 1 - rpm)
    elseif tpm >= 0 and s.tokens + estimate > tpm then
      verdict, free = 4, freed_by(tok_live, s.tokens + estimate - tpm)
    elseif max_conc >= 0 and s.in_flight >= max_conc then
      verdict = 5
    end
    if verdict ~= 0 then refusing = i end
  end
end

if verdict == 0 then
  for i = 1, scopes do
    local k = (i - 1) * 5
    local a = HEAD + (i - 1) * PER_SCOPE
    local s = seen[i]
    s.shadow = shadow_bits(s, a + 7)
    if s.shadow > 0 then  -- would-be refusals, counted before this request is
      for bit = 1, 7 do
        if math.floor(s.shadow / 2 ^ (bit - 1)) % 2 == 1 then
          redis.call('HINCRBY', KEYS[k + 4], SHADOW_FIELDS[bit], 1)
          redis.call('HINCRBY', KEYS[k + 5], SHADOW_FIELDS[bit], 1)
        end
      end
      redis.call('EXPIRE', KEYS[k + 4], day_ttl)
      redis.call('EXPIRE', KEYS[k + 5], month_ttl)
    end
    if arg[a + 1] >= 0 or arg[a + 8] >= 0 then
      redis.call('HINCRBY', KEYS[k + 1], sec, 1)
      redis.call('EXPIRE', KEYS[k + 1], window_ttl)
      s.requests = s.requests + 1
      if s.req_oldest < 0 then s.req_oldest = sec end
    end
    if (arg[a + 2] >= 0 or arg[a + 9] >= 0) and estimate > 0 then
      redis.call('HINCRBY', KEYS[k + 2], sec, estimate)
      redis.call('EXPIRE', KEYS[k + 2], window_ttl)
      s.tokens = s.tokens + estimate
      if s.tok_oldest < 0 then s.tok_oldest = sec end
    end
    redis.call('ZADD', KEYS[k + 3], now_ms + lease_ms, ticket)
    redis.call('PEXPIRE', KEYS[k + 3], lease_ms)
    s.in_flight = s.in_flight + 1
  end
end

local out = {string.format('%d %d %d', verdict, refusing, free)}
for i = 1, scopes do
  local s = seen[i]
  out[#out + 1] = string.format('%d %d %d %d %d %d %d %d %d %d', s.requests, s.tokens,
    s.in_flight, s.day, s.month, s.day_usd, s.month_usd, s.req_oldest, s.tok_oldest,
    s.shadow or 0)
end
return table.concat(out, ' ')
