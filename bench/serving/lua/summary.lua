-- Shared by the bench scripts: one machine-readable line with wrk's own figures.
-- Latencies are microseconds; non2xx counts responses with status >= 400 (wrk's errors.status).
local M = {}

function M.done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d "
      .. "p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end

return M
