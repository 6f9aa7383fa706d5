-- wrk -s bench/lua/chat.lua URL : POST one OpenAI chat completion per request.
--
-- Environment:
--   BENCH_STREAM=1    ask for an SSE stream ("stream": true); wrk's latency is then the time
--                     to the whole stream (data: [DONE] included)
--   BENCH_MODEL       the model name (default gpt-4o-mini)
--   BENCH_VERIFY=1    check every response: status 200 and the expected marker in the body
--                     (slower: wrk hands each body to Lua; used only for the warm-up)
--   BENCH_OUT         file that done() writes the run's numbers to, as one JSON object
local stream = os.getenv("BENCH_STREAM") == "1"
local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
local verify = os.getenv("BENCH_VERIFY") == "1"
local marker = stream and "data: [DONE]" or '"chat.completion"'

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
   '{"model":"%s","messages":[{"role":"user","content":"Say hello in one short sentence."}],' ..
   '"max_tokens":64%s}', model, stream and ',"stream":true' or "")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   good, bad = 0, 0
end

if verify then
   function response(status, headers, body)
      if status == 200 and body and string.find(body, marker, 1, true) then
         good = good + 1
      else
         bad = bad + 1
         if bad <= 3 then
            io.stderr:write(string.format("unexpected response: status %d, body %s\n",
               status, string.sub(tostring(body), 1, 300)))
         end
      end
   end
end

function done(summary, latency, requests)
   local good_total, bad_total = 0, 0
   for _, thread in ipairs(threads) do
      good_total = good_total + (thread:get("good") or 0)
      bad_total = bad_total + (thread:get("bad") or 0)
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local function ms(us) return us / 1000 end
   local out = string.format(
      '{"requests":%d,"seconds":%.3f,"rps":%.2f,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_ms":{"min":%.4f,"mean":%.4f,"max":%.4f,"p50":%.4f,"p90":%.4f,' ..
      '"p99":%.4f,"p999":%.4f},"verified":%s,"good":%d,"bad":%d}',
      summary.requests, seconds, summary.requests / seconds, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      ms(latency.min), ms(latency.mean), ms(latency.max), ms(latency:percentile(50)),
      ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency:percentile(99.9)),
      tostring(verify), good_total, bad_total)
   local path = os.getenv("BENCH_OUT")
   if path and path ~= "" then
      local f = assert(io.open(path, "w"))
      f:write(out, "\n")
      f:close()
   end
end
