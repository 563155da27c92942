// The long fuzz run of the reliability issue (the test runs 1 M frames):
//   bun scripts/fuzz.ts [FRAMES=50000000] [SEED=1]
// Mutated IPv4/IPv6/TCP/UDP/ICMP/fragment frames through the real pipeline; fails (exit 1)
// on an exception or when the counters do not account for every frame.
import { ConnTable } from "../src/conntrack/table.ts";
import { Pipeline } from "../src/dataplane/pipeline.ts";
import { ActiveConfig } from "../src/dataplane/snapshot.ts";
import { COUNTER_WORDS, MAX_DEST } from "../src/stats/counters.ts";
import { fuzzPipeline, fuzzSnapshot } from "../test/fixtures/fuzz.ts";

const frames = Number(process.argv[2] ?? 50_000_000);
const seed = Number(process.argv[3] ?? 1);
const table = ConnTable.create(1 << 18, MAX_DEST);
const counters = new Float64Array(COUNTER_WORDS);
const pl = new Pipeline(new ActiveConfig(fuzzSnapshot(), table.destState, null), table, counters);
const t0 = performance.now();
const res = fuzzPipeline(pl, counters, frames, seed);
const s = (performance.now() - t0) / 1000;
console.log(`${res.frames} frames in ${s.toFixed(1)} s: ${res.tx} forwarded, ${res.consumed} consumed, accounted ${res.accounted}`);
if (res.verdicts !== frames || res.accounted !== frames) {
  console.error("FAIL: a frame without a verdict, or counters that do not add up");
  process.exit(1);
}
