// End-to-end benchmark (issue 7, DESIGN §6): in one sitting, on one namespace topology
// (client cl, balancer lb, nginx real servers rs1/rs2 behind a bridge in lb, as
// perf-anchors §1), wrk through every balancer configuration in bench/e2e/configs.ts —
// direct, HAProxy mode tcp (nbthread 1 and 2), nginx stream, tslb NAT (defaults,
// --offload off, --workers 1, --workers 2), tslb DR, tslb IPIP, and the project's C TUN
// forwarder (bench/c/tunnat.c, plain and with vnet_hdr offloads) — then raw forwarded pps
// with bench/c/udpflood. Runs are interleaved (each pass walks every configuration per
// test, the second pass in reverse order) and reported as medians with min–max, with the
// balancer's CPU per request from /proc/PID/stat, and each tslb figure as a ratio to
// HAProxy nbthread 1, to the C forwarder and to direct.
//
// Needs root; makes only namespaces named tslbbench-<pid>-*, addresses from 198.18.0.0/15,
// nothing in the root namespace; every load generator runs under timeout(1); everything
// is removed on exit, on failure and on Ctrl-C. Skipped (exit 0) unless TSLB_BENCH_E2E=1
// or --run is given, so `npm run bench` stays a micro-bench run by default:
//   TSLB_BENCH_E2E=1 npm run bench            # every bench, this one included
//   bun bench/e2e.ts --run                    # this one alone
//   QUICK=1 bun bench/e2e.ts --run            # smoke run: 2 s runs, one pass, 4 configs, 3 tests
// Settings (environment, or --name=value on the command line):
//   DUR=10       seconds per wrk run          PASSES=2      interleaved passes (medians over them)
//   ONLY=a,b     configurations to run        TESTS=ka50,…  of ka50 ka200 ka1000 paced50 close50 bulk
//   PPS=1        the pps test (0: skip)       PPS_DUR=5     seconds per flood
//   BUILD=1      rebuild build/tslb first     OUT=DIR       results directory (default /tmp/tslb-bench-e2e-<time>)
// Results: the markdown tables are printed and written to OUT/results.md, every run to
// OUT/runs.json, raw wrk/udpflood output and daemon logs to OUT/logs/.
if (process.env.TSLB_BENCH_E2E !== "1" && !process.argv.includes("--run")) {
  console.log("e2e: skipped (end to end, needs root and namespaces, ~30 min: set TSLB_BENCH_E2E=1 or run `bun bench/e2e.ts --run`)");
  process.exit(0);
}
// Imported only now: loading the harness has side effects (a scratch directory).
await import("./e2e/main.ts");

export {};
