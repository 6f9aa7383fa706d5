-- Raise one period's totals to at least what the local usage store recorded. Never lowers
-- them: other workers and machines count into the same totals. Used on start and when
-- Redis comes back (it may have restarted empty).
-- KEYS: 1 period totals; ARGV: 1 tokens, 2 requests, 3 usd (micro-dollars), 4 ttl (s)
local raised = 0
local fields = {'tokens', 'requests', 'usd'}
for i, name in ipairs(fields) do
  local have = tonumber(redis.call('HGET', KEYS[1], name) or 0)
  local want = tonumber(ARGV[i])
  if have < want then
    redis.call('HSET', KEYS[1], name, want)
    raised = 1
  end
end
if raised == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4])) end
return raised
