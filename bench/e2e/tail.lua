-- wrk's --latency prints 50/75/90/99 %; the c=50 tail is made of waits of one scheduler
-- tick (4 ms at HZ=250), so the bench also reads the 99.9th percentile (bench/RESULTS.md).
done = function(summary, latency, requests)
  io.write(string.format("p99.9 latency: %.3fms\n", latency:percentile(99.9) / 1000))
end
