-- wrk script for bench/http/run.sh: one request, the same on every
-- connection (keep-alive), taken from the environment:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BEARER  the Authorization: Bearer value (required)
--   BENCH_BODY    the request body, sent as application/json (optional)
-- At the end it prints one line that run.sh parses:
--   wrk_result requests=N duration_us=N p50_us=N p90_us=N p99_us=N
--     max_us=N mean_us=N non2xx=N connect=N read=N write=N timeout=N
-- (latencies in microseconds; non2xx counts answers outside 200..399).

local bearer = os.getenv("BENCH_BEARER")
if bearer == nil or bearer == "" then
   io.stderr:write("request.lua: BENCH_BEARER is not set\n")
   os.exit(2)
end

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["Authorization"] = "Bearer " .. bearer
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "wrk_result requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d " ..
      "max_us=%d mean_us=%.0f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.status, e.connect, e.read, e.write, e.timeout))
end
