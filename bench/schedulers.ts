// Micro-bench: ns per schedule() call for every registered scheduler with 2, 16, 256 and
// 4096 destinations (random weights 1–100 and random connection counts, all usable),
// plus the allocation probe: heapStats().objectCount across 1 M calls per scheduler must
// stay flat. Packets vary the client address and port (4096 clients) and the destination
// address (1024, so lblc/lblcr mostly hit their cache); the clock advances 1 s per
// 65 536 calls. One shared call site, warmed with every scheduler first, so each figure
// is taken at the same (megamorphic) dispatch the pipeline has.
//   bun bench/schedulers.ts
//   --short or BENCH_SHORT=1: a smoke run (2, 16 and 256 destinations, few calls), figures not meaningful
import { heapStats } from "bun:jsc";
import { DS_ACTIVE, DS_INACTIVE, DS_STRIDE } from "../src/conntrack/dest_state.ts";
import { SCHEDULERS } from "../src/sched/index.ts";
import { DEST_AVAILABLE, DestSet, type Scheduler } from "../src/sched/scheduler.ts";
import { Pkt } from "../src/wire/pkt.ts";
import { ip4, rng } from "../test/fixtures/builder.ts";

const SHORT = process.env.BENCH_SHORT === "1" || process.argv.includes("--short");
const SIZES = SHORT ? [2, 16, 256] : [2, 16, 256, 4096];
const ALLOC_CALLS = SHORT ? 20_000 : 1_000_000;
/** Calls per timed cell: about 4e7 destination visits, within these bounds. */
const MIN_CALLS = SHORT ? 1_000 : 10_000;
const MAX_CALLS = SHORT ? 5_000 : 2_000_000;
/** Calls before each measurement (and per scheduler and size to warm the shared call site). */
const WARM_CALLS = SHORT ? 1_000 : 100_000;
const SITE_WARM_CALLS = SHORT ? 200 : 2000;
const ALLOC_SIZE = 16;
const r = rng(42);

function service(n: number): DestSet {
  const state = new Int32Array((n + 1) * DS_STRIDE);
  const d = new DestSet(n, state);
  const base = ip4("198.18.16.0");
  for (let i = 0; i < n; i++) {
    d.id[i] = i + 1;
    d.weight[i] = 1 + Math.floor(r() * 100);
    d.flags[i] = DEST_AVAILABLE;
    d.port[i] = 8080;
    d.addr[i * 4] = (base + i) | 0;
    state[(i + 1) * DS_STRIDE + DS_ACTIVE] = Math.floor(r() * 1000);
    state[(i + 1) * DS_STRIDE + DS_INACTIVE] = Math.floor(r() * 1000);
  }
  return d;
}

const clients = new Int32Array(4096);
for (let k = 0; k < clients.length; k++) clients[k] = (ip4("198.18.128.0") + Math.floor(r() * 32768)) | 0;
const vips = new Int32Array(1024);
for (let k = 0; k < vips.length; k++) vips[k] = (ip4("198.19.0.0") + k) | 0;
const pkt = new Pkt();
pkt.ipv = 4;
pkt.proto = 6;
pkt.dport = 80;
let clock = 0;

/** The one call site: `calls` schedule() calls; returns a checksum so nothing is optimised away. */
function drive(s: Scheduler, d: DestSet, calls: number): number {
  const p = pkt;
  let sum = 0;
  for (let k = 0; k < calls; k++) {
    const c = clock++;
    p.src0 = clients[c & 4095];
    p.sport = 1024 + (c & 0x7fff);
    p.dst0 = vips[(c >>> 3) & 1023];
    p.now = c >>> 16;
    sum += s.schedule(d, p);
  }
  return sum;
}

function make(name: string, d: DestSet): Scheduler {
  const s = SCHEDULERS[name](0);
  s.rebuild(d);
  return s;
}

const names = Object.keys(SCHEDULERS);
// Warm the call site with every scheduler so all figures see the same dispatch.
for (const name of names) for (const n of SIZES) { const d = service(n); drive(make(name, d), d, SITE_WARM_CALLS); }

/** Heap objects a scheduler may gain over the allocation probe (the JIT's own bookkeeping); a leak is one per call. */
const HEAP_SLACK = 100;
let leaked = false;
const rows: string[] = [];
for (const name of names) {
  const cells: string[] = [];
  for (const n of SIZES) {
    const d = service(n);
    const s = make(name, d);
    const calls = Math.max(MIN_CALLS, Math.min(MAX_CALLS, Math.floor(4e7 / (n + 16))));
    drive(s, d, Math.min(calls, WARM_CALLS));
    const t0 = Bun.nanoseconds();
    drive(s, d, calls);
    const t1 = Bun.nanoseconds();
    cells.push(`${((t1 - t0) / calls).toFixed(1)}`);
  }
  const d = service(ALLOC_SIZE);
  const s = make(name, d);
  drive(s, d, WARM_CALLS);
  Bun.gc(true);
  const h0 = heapStats().objectCount;
  drive(s, d, ALLOC_CALLS);
  const h1 = heapStats().objectCount;
  rows.push(`| ${name} | ${cells.join(" | ")} | ${h1 - h0 >= 0 ? "+" : ""}${h1 - h0} |`);
  if (h1 - h0 > HEAP_SLACK) {
    leaked = true;
    console.error(`FAIL: ${name}: schedule() allocates (${h1 - h0} heap objects over ${ALLOC_CALLS} calls)`);
  }
}

console.log(`ns per schedule() call, by number of destinations; heap objects over ${ALLOC_CALLS} calls (16 destinations)${SHORT ? " (short mode: smoke run, figures not meaningful)" : ""}\n`);
console.log(`| scheduler | ${SIZES.join(" | ")} | heap objects / ${ALLOC_CALLS} calls |`);
console.log(`|---|${SIZES.map(() => "---:").join("|")}|---:|`);
for (const row of rows) console.log(row);
if (leaked) process.exit(1);
