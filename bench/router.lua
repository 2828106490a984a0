-- router.lua - the wrk script of bench/router.sh: one small non-streaming
-- POST /v1/chat/completions per request, as an agent sends it, and one
-- machine-readable result line at the end.
--
-- BENCH_AUTH (environment) is the Authorization header sent. Calling the fake
-- upstream directly, that is the upstream's own key; through nginx or
-- kars-router it is the agent's key, which the fake refuses, so every 200
-- through a proxy shows the proxy replaced it with the credential it holds.
--
-- BENCH_PACE_MS, when set and not 0, paces each connection: after each
-- response it waits a random 0 to 2 x BENCH_PACE_MS ms (uniform, so the
-- connections do not fall into step) before the next request. 64 connections
-- at 20 ms offer about 3,000 requests/s whatever the target, which is how
-- bench/router.sh compares latency at the same load. wrk starts a request's
-- clock when it writes it, so the wait is not counted as latency.
--
-- done() prints, on one line:
--   wrk_result requests=N duration_us=N rps=R p50_us=N p90_us=N p99_us=N
--              max_us=N errors=N status_errors=N
-- Latencies come from wrk's own per-request histogram (microseconds, from
-- writing the request to reading the whole response). errors counts connect,
-- read, write and timeout errors; status_errors the responses that were not
-- 2xx/3xx. bench/router.sh refuses a run with either.

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_AUTH") or "missing")
wrk.body = '{"model":"gpt-4o-mini","messages":['
	.. '{"role":"system","content":"You are a helpful assistant."},'
	.. '{"role":"user","content":"Say hello in one short sentence."}],'
	.. '"max_tokens":32,"temperature":0}'

local pace = tonumber(os.getenv("BENCH_PACE_MS") or "0") or 0
if pace > 0 then
	function delay()
		return math.random(0, 2 * pace)
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	local seconds = summary.duration / 1e6
	io.write(string.format(
		"wrk_result requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d "
			.. "max_us=%d errors=%d status_errors=%d\n",
		summary.requests, summary.duration, summary.requests / seconds,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
