-- wrk's --latency prints 50/75/90/99 %; the c=50 tail is made of waits of one scheduler
-- tick (4 ms at HZ=250), so the bench also reads the 99.9th percentile (bench/RESULTS.md).
-- WRK_PACE_MS > 0 (the "paced" tests): each connection waits that long between requests;
-- wrk starts a request's clock when it writes it, so the wait is not in the latency.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "0") or 0
if pace > 0 then
  delay = function() return pace end
end

done = function(summary, latency, requests)
  io.write(string.format("p99.9 latency: %.3fms\n", latency:percentile(99.9) / 1000))
end
